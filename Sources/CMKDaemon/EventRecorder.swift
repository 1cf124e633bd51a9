import CMKAudit
import CMKSyncer
import Foundation
import Logging

/// Sends pass events to the journal (with CMK_* fields and MESSAGE_IDs) and to the security log.
struct EventRecorder: Sendable {
    let logger: Logger

    func record(_ events: [SyncEvent], report: SyncReport, daemon: Daemon) {
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
            if let entry = Self.securityEntry(event, report: report) { security(daemon, entry) }
            if event.kind == .accountRebound || event.kind == .accountCreated, let minted = event.fields["minted_dek"], !minted.isEmpty {
                security(daemon, SecurityLogEntry(event: .dekMinted, account: event.account, key: report.key, version: event.version,
                                                  details: ["dek": minted, "sync_id": report.syncID]))
            }
        }
    }

    func security(_ daemon: Daemon, _ entry: SecurityLogEntry) {
        do {
            _ = try daemon.securityLog.append(entry)
        } catch {
            logger.error("Cannot append to the security log.", metadata: ["error": "\(error)", "path": "\(daemon.securityLog.path)"])
        }
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
        default: return nil
        }
    }

    static func level(_ kind: SyncEvent.Kind) -> Logger.Level {
        switch kind {
        case .keyMissing, .versionDisabledInUse: return .critical
        case .keyPulled, .accountSuspended, .accountFailed, .credentialsRejected: return .error
        case .vaultUnreachable, .currentVersionUnusable: return .warning
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
        case .currentVersionUnusable, .vaultUnreachable, .credentialsRejected, .accountFailed: return nil
        }
        var details = ["sync_id": report.syncID]
        for (key, value) in event.fields where !value.isEmpty { details[key] = value }
        if event.kind == .accountCreated { details["created"] = "true" }
        return SecurityLogEntry(event: type, account: event.account, key: report.key, version: event.version,
                                previousVersion: event.previousVersion, details: details)
    }
}
