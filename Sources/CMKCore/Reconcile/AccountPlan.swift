import Foundation

/// What the syncer will do with one account in this pass: the output of ``Reconciler/plan(_:keyring:policy:now:)``.
public enum AccountPlan: Hashable, Sendable {
    /// Already bound to the target with every DEK: nothing to do.
    case inSync
    /// The account has no keyring yet: create one under `target`.
    case create(target: KeyVersion)
    /// Rewrap every DEK under `target` and mint a fresh DEK (rotation).
    case rebind(target: KeyVersion, from: [String])
    /// The key was pulled: suspend the account now.
    case suspend(reason: Suspension.Reason)
    /// The key was pulled but policy waits for cached DEKs to expire: suspend at `at`.
    case suspendLater(at: Date)
    /// Already suspended because of the pull: stay so.
    case staySuspended(Suspension)
    /// The key is back: verify that unwrap works, lift the suspension, then rebind if `rebindTo` is set.
    case resume(rebindTo: KeyVersion?)
    /// Keep the current binding although the current version cannot wrap (disabled, expired, not yet valid).
    case keep(binding: String, because: KeyVersion.WrapRefusal)
    /// Cannot proceed: needs an operator.
    case blocked(Blocker)
    /// The vault could not be consulted; keep serving from cache.
    case unreachable(VaultError)

    /// Whether executing the plan may change the stored keyring.
    public var writes: Bool {
        switch self {
        case .create, .rebind, .suspend, .resume: return true
        case .inSync, .suspendLater, .staySuspended, .keep, .blocked, .unreachable: return false
        }
    }

    /// Why an account cannot be synced without an operator.
    public enum Blocker: Hashable, Sendable {
        /// These versions still wrap DEKs of the account but are disabled: re-enable them.
        case versionsDisabledInUse([String])
        /// The keyring names versions the vault's key does not have: the keyring belongs to another
        /// key or vault, or was damaged.
        case versionsUnknown([String])
        /// The account had a keyring (it has objects, or an earlier pass saw its keyring) and has
        /// none now: its data cannot be read, and a new keyring would hide that.
        case keyringMissing
        /// The key is purged or missing: the data cannot be unwrapped.
        case keyMissing
        /// The key was pulled before the account ever had a keyring.
        case pulledBeforeCreation
        /// No version may wrap, and the account has no keyring to keep.
        case noUsableVersion(KeyVersion.WrapRefusal)
        /// Suspended by an operator; the syncer leaves it alone.
        case operatorSuspension
    }
}

/// The policy knobs the planner needs.
public struct ReconcilePolicy: Hashable, Sendable {
    /// When to suspend after a pull.
    public enum SuspendPolicy: String, Hashable, Sendable, Codable {
        /// Suspend in the first pass that sees the key deleted.
        case immediate
        /// Suspend once every cached DEK has expired (deletion date + cache TTL).
        case afterCacheTTL = "after-cache-ttl"
    }

    public var suspend: SuspendPolicy
    /// The DEK cache TTL, used by `afterCacheTTL`.
    public var cacheTTL: Duration

    public init(suspend: SuspendPolicy = .immediate, cacheTTL: Duration = .seconds(3600)) {
        self.suspend = suspend
        self.cacheTTL = cacheTTL
    }
}
