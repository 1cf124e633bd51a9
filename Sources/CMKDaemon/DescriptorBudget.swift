import CMKConfiguration
import CMKCore
import CMKSQLiteStorage
import Logging

/// The daemon's file descriptors at start (issue 24, docs/systemd.md "File descriptors"): raises
/// the soft `RLIMIT_NOFILE` to the hard limit, then fits the number of SQLite databases kept open
/// (`CMK_SQLITE_OPEN_DATABASES`) to it, lowering it with a warning rather than running out of
/// descriptors mid-pass. Refuses to start when the limit leaves no room for one database and
/// SQLite accounts are configured.
enum DescriptorBudget {
    /// Returns the refusal when the daemon cannot start; logs what it changed.
    static func prepare(_ configuration: SyncerConfiguration, handles: SQLiteHandles = .shared, logger: Logger) -> StorageError? {
        let (before, after) = DescriptorLimit.raiseSoftLimit()
        if after.soft != before.soft {
            logger.info("Raised the open-file limit.", metadata: [
                "cmk_nofile_soft_before": "\(before.soft)", "cmk_nofile_soft": "\(after.soft)", "cmk_nofile_hard": "\(after.hard)",
            ])
        }
        guard configuration.accounts.contains(where: { $0.driver == .sqlite }) else { return nil }
        let lowered: Bool
        do {
            lowered = try handles.fit(descriptorLimit: after.soft)
        } catch {
            logger.critical("Cannot start: the open-file limit is too low for SQLite accounts.", metadata: [
                "error": "\(error)", "message_id": "\(MessageID.descriptorLimit)", "cmk_nofile_soft": "\(after.soft)",
                "cmk_nofile_hard": "\(after.hard)",
            ])
            return error
        }
        if lowered {
            logger.warning("The open-file limit allows fewer open SQLite databases than asked; keeping fewer open.", metadata: [
                "message_id": "\(MessageID.descriptorLimit)", "cmk_nofile_soft": "\(after.soft)", "cmk_nofile_hard": "\(after.hard)",
                "cmk_sqlite_open_databases": "\(handles.requested)", "cmk_sqlite_open_databases_used": "\(handles.capacity)",
            ])
        }
        return nil
    }
}
