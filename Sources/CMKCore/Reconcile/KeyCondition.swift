import Foundation

/// What one vault snapshot (or the failure to get one) means for the whole pass (SPEC §5 table).
public enum KeyCondition: Hashable, Sendable {
    /// The current version may wrap: bind everything to it.
    case usable(target: KeyVersion)
    /// The current version is disabled, expired or not yet valid. Keep every binding as it is;
    /// only accounts without a keyring are created, under `fallback` (the newest wrappable version).
    case currentUnusable(current: KeyVersion, refusal: KeyVersion.WrapRefusal, fallback: KeyVersion?)
    /// The key was deleted (pulled) and can be recovered until the scheduled purge date.
    case pulled(DeletedKey)
    /// The key does not exist: purged, never created, or the configuration names the wrong key.
    case missing
    /// The vault could not be asked: outage, timeout, throttling. Never a reason to suspend.
    case unreachable(VaultError)
    /// The vault refused our credentials or permissions (401/403). Never a reason to suspend.
    case accessDenied(VaultError)

    /// Classifies a snapshot at `now`.
    public static func from(_ snapshot: KeySnapshot, now: Date) -> KeyCondition {
        switch snapshot {
        case .missing:
            return .missing
        case .deleted(let deleted):
            return .pulled(deleted)
        case .present(let state):
            guard let current = state.current else { return .missing }
            if let refusal = current.wrapRefusal(at: now) {
                return .currentUnusable(current: current, refusal: refusal, fallback: state.newestWrappable(at: now))
            }
            return .usable(target: current)
        }
    }

    /// Classifies a vault error raised while taking the snapshot.
    public static func from(_ error: VaultError) -> KeyCondition {
        switch error.code {
        case .forbidden, .unauthorized: return .accessDenied(error)
        case .deleted: return .unreachable(error) // a provider must report deletion as a snapshot, not an error
        default: return .unreachable(error)
        }
    }
}
