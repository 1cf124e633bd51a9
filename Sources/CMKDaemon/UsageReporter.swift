import CMKAzureKeyVault
import CMKCore
import CMKHost
import CMKSyncer
import Foundation
import Logging
import Synchronization

/// After every pass, the host's version usage to the vault service (`vault.azure.usage-report:
/// true`, provider `azure` on cmk-vault; docs/vault-service.md, "Version usage from the hosts"):
/// for each key version, how many of this host's accounts and DEKs it wraps, and nothing else —
/// no account names, no key material. The host's name is not sent: the service takes it from the
/// platform identity's token.
///
/// A report that fails never changes the pass or its outcome: a journal line (notice when
/// reporting starts failing, debug while it goes on, notice when it works again) and the next
/// pass reports again.
enum UsageReporter {
    /// Whether the last report failed (one daemon per process).
    private static let failing = Mutex<Bool>(false)

    /// Posts `report`'s usage when the configuration asks for it; returns whether it was accepted
    /// (nil: not configured).
    @discardableResult
    static func send(_ report: SyncReport, daemon: Daemon, logger: Logger) async -> Bool? {
        guard daemon.configuration.vault.provider == .azure, daemon.configuration.vault.azure?.usageReport == true,
              let vault = daemon.vault.base as? AzureKeyVault else { return nil }
        let metadata: Logger.Metadata = ["cmk_sync_id": "\(report.syncID)", "cmk_key_name": "\(daemon.settings.key.name)"]
        do {
            try await vault.postUsageReport(try body(report, key: daemon.settings.key.name, interval: daemon.configuration.sync.interval))
        } catch {
            let first = !failing.withLock { $0 }
            failing.withLock { $0 = true }
            logger.log(level: first ? .notice : .debug, "The usage report could not be sent to the vault service; the next pass reports again.",
                       metadata: metadata.merging(["error": "\(error)"]) { $1 })
            return false
        }
        let recovered = failing.withLock { state in defer { state = false }; return state }
        logger.log(level: recovered ? .notice : .debug, recovered ? "The usage report reached the vault service again." : "The usage report was sent to the vault service.",
                   metadata: metadata)
        return true
    }

    /// The JSON the service's `POST /v1.0/usageReports` takes (``UsageReportBody``, the type the
    /// service decodes): versions no account uses are left out.
    static func body(_ report: SyncReport, key: String, interval: Duration) throws -> Data {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        let versions = report.versions.filter { !$0.accounts.isEmpty || $0.deks > 0 }
            .map { UsageReportBody.Count(version: $0.version, accounts: $0.accounts.count, deks: $0.deks) }
        return try JSONEncoder().encode(UsageReportBody(key: key, syncId: report.syncID, finished: formatter.string(from: report.finished),
                                                        passInterval: seconds, accounts: report.accounts.count, versions: versions))
    }
}
