/// Who caused a security-log record: the daemon itself, or a local user running `cmkctl`.
/// Stored as `daemon` or `user:<name>`.
public enum SecurityActor: Sendable, Hashable, CustomStringConvertible {
    /// The daemon acting on its own (reconcile passes, start, stop).
    case daemon
    /// A local user, by login name.
    case user(String)

    /// Parses `daemon` or `user:<name>` with a non-empty name; nil otherwise.
    public init?(_ text: String) {
        if text == "daemon" {
            self = .daemon
        } else if text.hasPrefix("user:"), text.count > 5 {
            self = .user(String(text.dropFirst(5)))
        } else {
            return nil
        }
    }

    /// The stored form: `daemon` or `user:<name>`.
    public var description: String {
        switch self {
        case .daemon: return "daemon"
        case .user(let name): return "user:\(name)"
        }
    }
}
