import CMKCore
import Foundation

/// The result of one sync pass: the outcome of every account, the pass's overall state and the
/// version usage. Written atomically to the state directory after every pass (`cmkctl status` reads it).
public struct SyncReport: Hashable, Sendable, Codable {
    /// Identifies the pass in the journal (`CMK_SYNC_ID`) and the security log.
    public var syncID: String
    public var started: Date
    public var finished: Date
    public var state: OverallState
    /// One sentence naming what is wrong when the state is not `ok`.
    public var cause: String?
    public var key: String
    /// The key's current version, when the vault told us.
    public var currentVersion: String?
    /// The version accounts are bound to after the pass (the target, or the kept binding).
    public var targetVersion: String?
    public var accounts: [AccountReport]
    public var versions: [VersionUsage]
    /// Vault calls made by the pass (snapshot attempts, unwraps, public keys).
    public var vaultCalls: Int
    /// Snapshot retries after transient failures.
    public var retries: Int
    /// When the key was first seen pulled (carried from pass to pass while it stays pulled).
    public var pulledSince: Date?
    /// Set by the pass that noticed a restore: how long the key was pulled.
    public var outageSeconds: Double?
    /// The process that ran the pass.
    public var pid: Int32
    /// When the daemon plans the next pass (filled in by the scheduler).
    public var nextPass: Date?
    /// Why the security log cannot be appended (a short phrase), when it cannot: set by the daemon
    /// after the pass (``noteSecurityLogProblem(_:)``); nil while the log can be appended.
    public var securityLog: String?
    /// Why the pass stopped before every account was reached (the daemon was stopping), when it
    /// did: such a pass is never `ok`, lists the accounts it did not reach as `not-reached` with
    /// their last known binding, and leaves ``versions`` as the last complete pass computed them.
    public var interrupted: String?
    /// The last `cmkctl sync` request (a counter in `sync-request`) the daemon had seen when the
    /// pass started: `sync --wait` waits for a report that answers its own request, not by times.
    public var syncRequest: UInt64?
    /// The pass's end on the system's boot clock (CLOCK_BOOTTIME, seconds) and the boot it belongs
    /// to, set by the daemon: the report's age for `cmkctl status`, whatever the wall clocks say.
    public var finishedUptime: Double?
    public var bootID: String?
    /// The current version's expiry, when it falls within `sync.expiry-warning` of the pass's end.
    public var currentExpires: Date?

    /// Accounts whose outcome is in-sync or rebound.
    public var inSyncCount: Int { accounts.filter { $0.outcome.isInSync }.count }

    public init(syncID: String, started: Date, finished: Date, state: OverallState, cause: String?, key: String,
                currentVersion: String?, targetVersion: String?, accounts: [AccountReport], versions: [VersionUsage],
                vaultCalls: Int, retries: Int, pulledSince: Date?, outageSeconds: Double?, pid: Int32, nextPass: Date? = nil) {
        self.syncID = syncID
        self.started = started
        self.finished = finished
        self.state = state
        self.cause = cause
        self.key = key
        self.currentVersion = currentVersion
        self.targetVersion = targetVersion
        self.accounts = accounts
        self.versions = versions
        self.vaultCalls = vaultCalls
        self.retries = retries
        self.pulledSince = pulledSince
        self.outageSeconds = outageSeconds
        self.pid = pid
        self.nextPass = nextPass
    }
}

/// The pass's overall state; drives the daemon's status line and `cmkctl` exit codes.
public enum OverallState: String, Hashable, Sendable, Codable {
    /// Every account is bound to the current version.
    case ok
    /// Serving, but something needs attention: vault unreachable or refusing us, current version
    /// unusable, or some accounts failed.
    case degraded
    /// The customer pulled the key: accounts are (or will shortly be) suspended.
    case keyPulled = "key-pulled"
    /// Data is at risk: key purged or missing, or a version in use was disabled.
    case critical

    /// The word the status line starts with.
    public var label: String {
        switch self {
        case .ok: return "in sync"
        case .degraded: return "DEGRADED"
        case .keyPulled: return "KEY PULLED"
        case .critical: return "CRITICAL"
        }
    }
}

/// One account in a report.
public struct AccountReport: Hashable, Sendable, Codable {
    public var name: String
    public var kind: StorageKind
    public var outcome: Outcome
    /// The version wrapping the account's active DEK after the pass.
    public var binding: String?
    /// Every version the account's DEKs are wrapped under.
    public var versions: [String]
    public var deks: Int
    public var generation: UInt64?
    public var suspended: Bool
    public var suspendedSince: Date?
    /// The binding before the pass when it changed.
    public var previousBinding: String?
    /// Milliseconds the account took.
    public var milliseconds: Int
    /// The daemon (`sync.instance-name`) that last handled the account: the one that wrote its
    /// keyring this pass, the lease holder it was left to, or, for an account in sync, the one
    /// that last held its lease (shared storage) or this daemon (storage only it serves).
    public var handledBy: String?

    public init(name: String, kind: StorageKind, outcome: Outcome, binding: String?, versions: [String], deks: Int,
                generation: UInt64?, suspended: Bool, suspendedSince: Date?, previousBinding: String?, milliseconds: Int) {
        self.name = name
        self.kind = kind
        self.outcome = outcome
        self.binding = binding
        self.versions = versions
        self.deks = deks
        self.generation = generation
        self.suspended = suspended
        self.suspendedSince = suspendedSince
        self.previousBinding = previousBinding
        self.milliseconds = milliseconds
    }
}

/// An account's outcome (SPEC §5 step 3): `in-sync`, `rebound`, `suspended`, `failed(reason)`.
public struct Outcome: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable, Codable {
        case inSync = "in-sync"
        case rebound
        case suspended
        case failed
        /// The pass stopped (the daemon was stopping) before it reached this account; binding and
        /// versions are as the previous pass saw them.
        case notReached = "not-reached"
        /// Another daemon held the account's rebind lease (shared storage, SPEC §12): left to it
        /// this pass. Not a failure; binding and versions are as this pass read them.
        case handledElsewhere = "handled-elsewhere"
    }

    public var code: Code
    /// For `failed`: a value-free reason code (e.g. `vault.unavailable`, `version-disabled-in-use`).
    public var reason: String?
    /// For `failed` and warnings: a sentence for the operator.
    public var detail: String?

    public init(_ code: Code, reason: String? = nil, detail: String? = nil) {
        self.code = code
        self.reason = reason
        self.detail = detail
    }

    public var isInSync: Bool { code == .inSync || code == .rebound }

    public var description: String {
        guard let reason else { return code.rawValue }
        return "\(code.rawValue)(\(reason))"
    }
}
