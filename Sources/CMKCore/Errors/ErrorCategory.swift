/// How the rest of the system should treat an error: retry logic and exit codes branch on this,
/// never on message strings.
public enum ErrorCategory: String, Sendable, Hashable, Codable, CaseIterable {
    /// The operator's input is wrong (configuration, arguments, permissions). Retrying will not help.
    case configuration
    /// An outage: the vault or storage may answer later. Retry with backoff; never revoke.
    case transient
    /// The customer withdrew access (key deleted, version disabled, access removed).
    case revoked
    /// A bug, corrupt data or an invariant that did not hold.
    case `internal`
}

/// An error that carries a short, value-free code safe for metric labels and journal fields,
/// and a category for retry and exit-code logic.
public protocol CategorizedError: Error, CustomStringConvertible {
    /// A short identifier such as `vault.throttled`, free of values and secrets.
    var codeName: String { get }
    /// How callers should treat the error.
    var category: ErrorCategory { get }
}
