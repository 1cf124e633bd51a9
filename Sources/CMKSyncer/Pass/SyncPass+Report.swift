import CMKCore
import Foundation

extension SyncPass {
    func assemble(syncID: String, started: Date, finished: Date, condition: KeyCondition, versions: [KeyVersion],
                  outcomes: [AccountResult], keyrings: [String: Keyring], unreached: Int, previous: SyncReport?,
                  vaultCalls: Int, retries: Int) -> (report: SyncReport, events: [SyncEvent]) {
        let key = settings.key.name
        var events: [SyncEvent] = []
        var state = OverallState.ok
        var cause: String?
        var currentVersion: String?
        var targetVersion: String?
        var pulledSince: Date?
        var outageSeconds: Double?
        let knownVersions = condition.isReachable ? versions : []

        switch condition {
        case .usable(let target):
            currentVersion = target.id
            targetVersion = target.id
        case .currentUnusable(let current, let refusal, let fallback):
            currentVersion = current.id
            targetVersion = fallback?.id
            state = .degraded
            cause = "current version \(current.id) of key '\(key)' cannot wrap (\(refusal)); keeping the last usable binding"
            if previous?.cause != cause {
                events.append(SyncEvent(.currentVersionUnusable, "The current key version cannot wrap; keeping the last usable binding.",
                                        version: current.id, fields: ["refusal": refusal.description]))
            }
        case .pulled(let deleted):
            state = .keyPulled
            pulledSince = previous?.pulledSince ?? deleted.deletedDate
            let purge = deleted.scheduledPurgeDate.map { "; the vault purges it on \($0.ISO8601Format())" } ?? ""
            cause = "key '\(key)' was deleted on \(deleted.deletedDate.ISO8601Format())\(purge); recover it to restore service"
            if previous?.state != .keyPulled {
                events.append(SyncEvent(.keyPulled, "The root key was pulled; accounts are suspended.", fields: [
                    "deleted_date": deleted.deletedDate.ISO8601Format(),
                    "scheduled_purge_date": deleted.scheduledPurgeDate?.ISO8601Format() ?? "",
                ]))
            }
        case .missing:
            state = .critical
            cause = "key '\(key)' is missing from the vault (purged, or the configuration names the wrong key); no local data was deleted"
            if previous?.cause != cause { events.append(SyncEvent(.keyMissing, "The root key is missing from the vault.")) }
        case .unreachable(let error):
            state = .degraded
            let suspended = outcomes.filter(\.report.suspended).count
            let stays = suspended == 0 ? "nothing suspended" : "\(suspended) suspended account(s) stay suspended"
            // Out of file descriptors the vault was never asked: a local limit, not an outage.
            let local = error.code == .descriptorsExhausted
            cause = local ? "the vault could not be asked (\(error.codeName): \(error.reason)); serving from cache, \(stays)"
                : "vault unreachable (\(error.codeName): \(error.reason)); serving from cache, \(stays)"
            events.append(SyncEvent(.vaultUnreachable, local ? "This host ran out of file descriptors before it could ask the vault; serving from cache."
                : "The vault could not be reached; serving from cache.", fields: [
                "error": error.codeName, "detail": error.reason, "retries": "\(retries)",
            ]))
        case .accessDenied(let error):
            state = .degraded
            let suspended = outcomes.filter(\.report.suspended).count
            let stays = suspended == 0 ? "nothing suspended" : "\(suspended) suspended account(s) stay suspended"
            cause = "vault refused our credentials (\(error.codeName): \(error.reason)); check the identity's access, \(stays)"
            events.append(SyncEvent(.credentialsRejected, "The vault rejected the syncer's credentials.", fields: [
                "error": error.codeName, "detail": error.reason,
            ]))
        }

        // Transitions seen against the previous pass.
        if case .usable = condition, let previous, let before = previous.currentVersion, let now = currentVersion, before != now {
            events.insert(SyncEvent(.keyRotated, "The root key was rotated; rebinding accounts.", version: now, previousVersion: before), at: 0)
        }
        if condition.hasKey {
            let wasPulled = previous?.state == .keyPulled || previous?.pulledSince != nil
            let resumed = outcomes.filter { $0.events.contains { $0.kind == .accountResumed } }
            if wasPulled || !resumed.isEmpty {
                let since = previous?.pulledSince ?? resumed.compactMap(\.suspendedBefore).min()
                outageSeconds = since.map { finished.timeIntervalSince($0) }
                events.append(SyncEvent(.keyRestored, "The root key is back; suspensions lifted.", version: currentVersion, fields: [
                    "outage_seconds": outageSeconds.map { String(Int($0)) } ?? "unknown",
                ]))
            }
        }

        // Account-level escalation.
        func accounts(blockedBy matches: (AccountPlan.Blocker) -> Bool) -> String {
            outcomes.filter { $0.blocker.map(matches) ?? false }.map(\.report.name).joined(separator: ", ")
        }
        let keyringMissing = accounts { $0 == .keyringMissing }
        let unknown = accounts { if case .versionsUnknown = $0 { return true }; return false }
        let disabled = accounts { if case .versionsDisabledInUse = $0 { return true }; return false }
        if !keyringMissing.isEmpty {
            state = .critical
            cause = "the keyring of \(keyringMissing) is missing (the account had one); restore it from a backup, no new keyring is made"
        } else if !unknown.isEmpty {
            state = .critical
            cause = "the keyring of \(unknown) names key versions the vault does not have; restore it from a backup"
        } else if !disabled.isEmpty {
            state = .critical
            cause = "a disabled key version still wraps DEKs of \(disabled): re-enable it in the vault"
        } else if state == .ok, let failed = outcomes.first(where: { $0.report.outcome.code == .failed }) {
            state = .degraded
            let count = outcomes.filter { $0.report.outcome.code == .failed }.count
            cause = "\(count) account(s) failed, first \(failed.report.name): \(failed.report.outcome.detail ?? failed.report.outcome.reason ?? "")"
        }
        // A pass cut short by a stop is never the truth about every account: not ok, and the
        // accounts it did not reach keep what the previous pass knew.
        var interrupted: String?
        if unreached > 0 {
            interrupted = "the daemon was stopping"
            let note = "the pass was cut short (the daemon was stopping): \(unreached) of \(outcomes.count) account(s) not reached, shown as the previous pass saw them"
            if state == .ok {
                state = .degraded
                cause = note
            } else {
                cause = [cause, note].compactMap { $0 }.joined(separator: "; ")
            }
        }
        events += outcomes.flatMap(\.events)

        // Accounts whose keyring this pass did not read (failed) still use the versions they were
        // last seen with; version usage comes only from complete passes.
        let lastKnown = Dictionary((previous?.accounts ?? []).map { ($0.name, $0.versions) }, uniquingKeysWith: { a, _ in a })
        let unread = Dictionary(outcomes.filter { $0.keyring == nil }.compactMap { o in lastKnown[o.report.name].map { (o.report.name, $0) } },
                                uniquingKeysWith: { a, _ in a })
        let usage = VersionUsage.compute(versions: knownVersions, currentID: currentVersion, keyrings: keyrings, unread: unread,
                                         previous: previous?.versions ?? [], backupRetention: settings.backupRetention, now: finished)
        let complete = interrupted == nil && condition.isReachable
        let safeBefore = Set((previous?.versions ?? []).filter(\.safeToDisable).map(\.version))
        for version in usage where complete && version.safeToDisable && !safeBefore.contains(version.version) {
            events.append(SyncEvent(.versionSafeToDisable, "A key version is no longer referenced and is safe to disable.",
                                    version: version.version, fields: ["unreferenced_since": version.unreferencedSince?.ISO8601Format() ?? ""]))
        }

        var report = SyncReport(syncID: syncID, started: started, finished: finished, state: state, cause: cause, key: key,
                                currentVersion: currentVersion, targetVersion: targetVersion, accounts: outcomes.map(\.report),
                                versions: complete ? usage : (previous?.versions ?? (interrupted == nil ? usage : [])),
                                vaultCalls: vaultCalls, retries: retries, pulledSince: pulledSince, outageSeconds: outageSeconds, pid: getpid())
        report.interrupted = interrupted
        if case .usable(let target) = condition, settings.expiryWarning > .zero, let expires = target.expires,
           expires.timeIntervalSince(finished) <= settings.expiryWarning.timeInterval {
            report.currentExpires = expires
            // Once per version: a pass after a restart reads the previous report from the state directory.
            if previous?.currentExpires == nil || previous?.currentVersion != target.id {
                events.append(SyncEvent(.keyNearExpiry, "The current key version expires soon; the customer should rotate the key.",
                                        version: target.id, fields: ["expires": expires.ISO8601Format()]))
            }
        }
        return (report, events)
    }
}

extension KeyCondition {
    /// The vault answered (whatever it said).
    var isReachable: Bool {
        switch self {
        case .unreachable, .accessDenied: return false
        default: return true
        }
    }

    /// The key exists (usable or not).
    var hasKey: Bool {
        switch self {
        case .usable, .currentUnusable: return true
        default: return false
        }
    }
}
