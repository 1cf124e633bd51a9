import CMKAudit
import CMKSyncer
import Foundation
import Logging
import Synchronization

/// Sends pass events to the journal (with CMK_* fields and MESSAGE_IDs) and to the security log;
/// after each pass writes the `rebind`/`dek-minted` records the log lacks (lost to a crash between
/// a keyring's commit and its record, or to a log that could not be appended) and notes in the
/// report when the log cannot be appended (docs/security-log.md).
struct EventRecorder: Sendable {
    let logger: Logger
    /// What the security log records about each account's binding, read once per log file.
    private let bindings = BindingCache()
    /// Records that could not be appended, kept until the log takes them (or a `log-gap` says so).
    let pending = PendingSecurityRecords()

    init(logger: Logger) { self.logger = logger }

    /// Records the pass's events, writes records the log lacks, checks that the log can still be
    /// appended, and notes it in `report` when it cannot (`DEGRADED: security log cannot be
    /// appended (…)`). The journal hears of the change once, not every pass.
    func finishPass(_ events: [SyncEvent], report: inout SyncReport, previous: SyncReport?, daemon: Daemon) async {
        var problem = record(events, report: report, daemon: daemon)
        if problem == nil { problem = await recoverMissingRecords(report: report, daemon: daemon) }
        if problem == nil {
            do { try daemon.securityLog.requireAppendable() } catch { problem = error }
        }
        if let problem {
            report.noteSecurityLogProblem(problem.summary)
            if previous?.securityLog == nil {
                logger.error("The security log cannot be appended; key changes are made but not recorded in it.",
                             metadata: auditMetadata(daemon, problem))
            }
        } else if previous?.securityLog != nil {
            logger.notice("The security log can be appended again.", metadata: ["cmk_security_log": "\(daemon.securityLog.path)"])
        }
    }

    /// Logs each event and appends its security-log record. After the first failed append the
    /// pass's other records are not attempted (each would fail the same way, and slowly); the
    /// journal gets one error with the count. Returns the failure, if any.
    func record(_ events: [SyncEvent], report: SyncReport, daemon: Daemon) -> AuditError? {
        var failure = flushPending(daemon)
        var unwritten = 0
        // Records wait (in order, behind any that already wait) rather than being dropped.
        func append(_ entry: SecurityLogEntry) {
            guard failure == nil else { unwritten += 1; pending.keep(entry, at: Date()); return }
            do {
                try daemon.securityLog.append(entry)
                bindings.note(entry, log: daemon.securityLog.path)
            } catch {
                failure = error
                unwritten += 1
                pending.keep(entry, at: Date())
            }
        }
        for event in events {
            var metadata: Logger.Metadata = [
                "cmk_sync_id": "\(report.syncID)", "cmk_key_name": "\(report.key)", "cmk_event": "\(event.kind.rawValue)",
            ]
            if let account = event.account {
                metadata["cmk_account"] = "\(account)"
                if let kind = report.accounts.first(where: { $0.name == account })?.kind { metadata["cmk_account_kind"] = "\(kind.rawValue)" }
                if let outcome = report.accounts.first(where: { $0.name == account })?.outcome { metadata["cmk_outcome"] = "\(outcome)" }
            }
            if let version = event.version { metadata["cmk_key_version"] = "\(version)" }
            if let previous = event.previousVersion { metadata["cmk_previous_key_version"] = "\(previous)" }
            for (key, value) in event.fields { metadata["cmk_\(key)"] = "\(value)" }
            if let id = Self.messageID(event.kind) { metadata["message_id"] = "\(id)" }
            logger.log(level: Self.level(event.kind), "\(event.message)", metadata: metadata)
            if let entry = Self.securityEntry(event, report: report) { append(entry) }
            if event.kind == .accountRebound || event.kind == .accountCreated, let minted = event.fields["minted_dek"], !minted.isEmpty {
                append(SecurityLogEntry(event: .dekMinted, account: event.account, key: report.key, version: event.version,
                                        details: ["dek": minted, "sync_id": report.syncID]))
            }
        }
        if let failure {
            var metadata = auditMetadata(daemon, failure)
            metadata["cmk_sync_id"] = "\(report.syncID)"
            metadata["cmk_records_not_written"] = "\(unwritten)"
            metadata["cmk_records_waiting"] = "\(pending.count)"
            logger.error("Security-log records of this pass could not be written; they wait in memory and the journal has the events.", metadata: metadata)
        }
        return failure
    }

    /// Appends one record outside a pass (daemon started, stopped, reloaded), after the records
    /// that wait; keeps it and logs a failure. Records still waiting when the daemon stops are
    /// lost: the journal's error says how many.
    @discardableResult
    func security(_ daemon: Daemon, _ entry: SecurityLogEntry) -> Bool {
        do throws(AuditError) {
            if let failure = flushPending(daemon) { throw failure }
            try daemon.securityLog.append(entry)
            return true
        } catch {
            pending.keep(entry, at: Date())
            var metadata = auditMetadata(daemon, error)
            metadata["cmk_event"] = "\(entry.event.rawValue)"
            metadata["cmk_records_waiting"] = "\(pending.count)"
            logger.error("A security-log record could not be written; it waits in memory (lost if the daemon stops first).", metadata: metadata)
            return false
        }
    }

    /// Appends the records that wait (after a `log-gap` record if some were given up). Returns
    /// the failure, if any; logs how many were written.
    private func flushPending(_ daemon: Daemon) -> AuditError? {
        guard pending.count > 0 else { return nil }
        let log = daemon.securityLog
        do {
            let written = try pending.flush(to: log) { bindings.note($0, log: log.path) }
            logger.notice("Security-log records that waited while the log could not be appended were written.", metadata: [
                "cmk_security_log": "\(log.path)", "cmk_records_written": "\(written)",
            ])
            return nil
        } catch {
            return error
        }
    }

    /// Writes a `rebind` (and `dek-minted`) record, marked recovered, for every account whose
    /// keyring is bound to a version the log's last `rebind` for it does not name. Reads the log
    /// once per log file, and a keyring only where the binding differs. Returns the failure, if any.
    func recoverMissingRecords(report: SyncReport, daemon: Daemon) async -> AuditError? {
        let log = daemon.securityLog
        let recorded: RecordedBindings
        do { recorded = try bindings.load(log) } catch { return error }
        for account in report.accounts {
            guard let binding = account.binding, recorded.accounts[account.name]?.version != binding,
                  let keyring = try? await daemon.account(named: account.name)?.driver.readKeyring(),
                  let active = keyring.active else { continue }
            let entries = recorded.missingRecords(account: account.name, key: report.key, binding: active.keyVersion,
                                                  generation: keyring.generation, activeDEK: keyring.activeDEK.description,
                                                  activeDEKVersion: active.keyVersion, syncID: report.syncID)
            for entry in entries {
                do {
                    try log.append(entry)
                    bindings.note(entry, log: log.path)
                } catch {
                    return error
                }
                logger.notice("A security-log record the log lacked was written from the account's keyring, marked recovered.", metadata: [
                    "cmk_account": "\(account.name)", "cmk_event": "\(entry.event.rawValue)", "cmk_key_version": "\(entry.version ?? "")",
                    "cmk_previous_key_version": "\(entry.previousVersion ?? "")", "cmk_sync_id": "\(report.syncID)",
                ])
            }
        }
        return nil
    }

    private func auditMetadata(_ daemon: Daemon, _ error: AuditError) -> Logger.Metadata {
        ["message_id": "\(MessageID.securityLogUnwritable)", "cmk_security_log": "\(daemon.securityLog.path)",
         "cmk_audit_error": "\(error.codeName)", "error": "\(error)"]
    }

    static func messageID(_ kind: SyncEvent.Kind) -> String? {
        switch kind {
        case .keyRotated: return MessageID.keyRotated
        case .keyPulled: return MessageID.keyPulled
        case .keyRestored: return MessageID.keyRestored
        case .keyMissing: return MessageID.keyMissing
        case .versionDisabledInUse: return MessageID.versionDisabledInUse
        case .vaultUnreachable: return MessageID.vaultUnreachable
        case .credentialsRejected: return MessageID.credentialsRejected
        case .currentVersionUnusable: return MessageID.currentVersionUnusable
        case .accountFailed: return MessageID.accountFailed
        case .keyringMissing: return MessageID.keyringMissing
        case .versionUnknown: return MessageID.versionUnknown
        case .keyNearExpiry: return MessageID.keyNearExpiry
        default: return nil
        }
    }

    static func level(_ kind: SyncEvent.Kind) -> Logger.Level {
        switch kind {
        case .keyMissing, .versionDisabledInUse, .keyringMissing, .versionUnknown: return .critical
        case .keyPulled, .accountSuspended, .accountFailed, .credentialsRejected: return .error
        case .vaultUnreachable, .currentVersionUnusable, .keyNearExpiry: return .warning
        case .keyRotated, .keyRestored, .accountResumed: return .notice
        case .accountRebound, .accountCreated, .versionSafeToDisable: return .info
        }
    }

    static func securityEntry(_ event: SyncEvent, report: SyncReport) -> SecurityLogEntry? {
        let type: SecurityEvent
        switch event.kind {
        case .keyRotated: type = .keyRotationNoticed
        case .accountRebound, .accountCreated: type = .rebind
        case .keyPulled: type = .keyPulled
        case .accountSuspended: type = .accountSuspended
        case .keyRestored: type = .keyRestored
        case .accountResumed: type = .accountResumed
        case .keyMissing: type = .keyPurgedOrMissing
        case .versionDisabledInUse: type = .versionDisabledInUse
        case .versionSafeToDisable: type = .versionSafeToDisable
        // Storage states, not key operations: the journal and the status line carry them.
        // The vault's own log records a version near expiry (cmk-vault: key-near-expiry).
        case .currentVersionUnusable, .vaultUnreachable, .credentialsRejected, .accountFailed, .keyringMissing, .versionUnknown, .keyNearExpiry:
            return nil
        }
        var details = ["sync_id": report.syncID]
        for (key, value) in event.fields where !value.isEmpty { details[key] = value }
        if event.kind == .accountCreated { details["created"] = "true" }
        return SecurityLogEntry(event: type, account: event.account, key: report.key, version: event.version,
                                previousVersion: event.previousVersion, details: details)
    }
}

/// The log's ``RecordedBindings``, read from the file once (per log path) and then kept up to date
/// with every record this process appends; the daemon is the only writer of `rebind` records.
private final class BindingCache: Sendable {
    private let state = Mutex<(path: String, bindings: RecordedBindings)?>(nil)

    func load(_ log: SecurityLog) throws(AuditError) -> RecordedBindings {
        if let cached = state.withLock({ $0 }), cached.path == log.path { return cached.bindings }
        let bindings = try log.recordedBindings()
        state.withLock { $0 = (log.path, bindings) }
        return bindings
    }

    func note(_ entry: SecurityLogEntry, log path: String) {
        state.withLock { cached in
            guard cached?.path == path else { return }
            cached?.bindings.note(entry)
        }
    }
}
