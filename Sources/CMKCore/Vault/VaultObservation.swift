import Synchronization

/// What a vault call came to, for metrics: a value-free word, never a key, account or message.
public enum VaultCallOutcome: String, Sendable, CaseIterable {
    /// The vault answered and did what was asked.
    case ok
    /// The vault asked us to slow down (HTTP 429, `vault.throttled`).
    case throttled
    /// The vault could not be reached or failed (timeouts, refused connections, 5xx; `vault.unavailable`).
    case unreachable
    /// The vault refused our identity (401/403; `vault.unauthorized`, `vault.forbidden`).
    case denied
    /// The vault answered that the key or version cannot be used (`vault.not-found`,
    /// `vault.key-deleted`, `vault.version-disabled`).
    case refused
    /// Anything else (a malformed answer, a misconfiguration, a local fault).
    case error

    /// The outcome of a call that threw `error`.
    public init(_ error: any Error) {
        guard let error = error as? VaultError else { self = .error; return }
        switch error.code {
        case .throttled: self = .throttled
        case .unavailable: self = .unreachable
        case .unauthorized, .forbidden: self = .denied
        case .notFound, .deleted, .disabled: self = .refused
        default: self = .error
        }
    }
}

/// Where a vault call was tried again.
public enum VaultRetryLayer: String, Sendable, CaseIterable {
    /// The provider sent one HTTP request again (the Azure provider's retry policy).
    case request
    /// The process-wide throttle retried a call the vault refused with 429 (`VaultThrottle`).
    case throttle
    /// The pass retried its snapshot after a transient failure.
    case pass
}

/// Told about every vault call, retry and throttle pause of the process. The daemon installs one
/// when `metrics.listen` is set (CMKMetrics); without one nothing is observed and nothing is linked:
/// the libraries that call the vault (and `cmkctl`) know nothing of metrics.
public protocol VaultObserver: Sendable {
    /// One logical vault call (`snapshot`, `public-key`, `wrap`, `unwrap`) ended.
    func vaultCall(_ operation: String, outcome: VaultCallOutcome, seconds: Double)
    /// A call is tried again.
    func vaultRetry(_ layer: VaultRetryLayer)
    /// The process-wide throttle now pauses callers this much longer than it already did.
    func vaultThrottlePaused(seconds: Double)
}

/// The process's ``VaultObserver``, if one is installed.
public enum VaultObservation {
    private static let installed = Mutex<(any VaultObserver)?>(nil)

    /// Installs `observer` for the rest of the process (the daemon, once, before it builds its vault).
    public static func install(_ observer: any VaultObserver) {
        installed.withLock { $0 = observer }
    }

    /// The installed observer, or nil.
    public static var observer: (any VaultObserver)? { installed.withLock { $0 } }
}
