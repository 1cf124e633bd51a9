import Foundation

/// Why the security log cannot be opened, appended to or read. `detail` names the file or
/// parameter and the fix; it never holds a key, a record's bytes or a secret.
public struct VaultLogError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The log file or key file is reachable by others, or not a regular file.
        case permissions
        /// The stored tree is shorter than, or differs from, the last checkpoint the service
        /// signed: a restored backup or a rewrite. The service refuses to start.
        case rolledBack = "rolled-back"
        /// The database or key file is not what this build wrote (damaged, newer schema).
        case corrupt
        /// The configured public URL gives another origin than the one the log was created with.
        case originChanged = "origin-changed"
        /// A request's parameters are out of range (index ≥ size, size beyond the tree, …).
        case outOfRange = "out-of-range"
        /// SQLite or the file system failed.
        case io
    }

    public let code: Code
    public let detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "security log: \(detail) [\(code.rawValue)]" }
}
