/// Who caused a security-log record: the daemon itself, or a local user running `cmkctl`.
/// Stored as `daemon` or `user:<name>`.
public enum SecurityActor: Sendable, Hashable, CustomStringConvertible {
    /// The daemon acting on its own (reconcile passes, start, stop).
    case daemon
    /// A local user, by login name.
    case user(String)

    /// Parses `daemon` or `user:<name>` with a non-empty name; nil otherwise. Compares bytes, not
    /// characters: a name starting with a combining mark still follows `user:`.
    public init?(_ text: String) {
        let prefix = "user:".utf8
        if text.utf8.elementsEqual("daemon".utf8) {
            self = .daemon
        } else if text.utf8.starts(with: prefix), text.utf8.count > prefix.count {
            self = .user(String(decoding: text.utf8.dropFirst(prefix.count), as: UTF8.self))
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
