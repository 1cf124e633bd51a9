import CMKCore

/// An error from the security log: the file cannot be opened, locked, read or written, its mode
/// is unsafe, a stored record does not parse, or an entry carries something the log refuses.
/// Equality compares the code only.
///
/// A broken hash chain is not an error: ``SecurityLog/verify()`` returns it as a
/// ``VerificationResult``.
public struct AuditError: CategorizedError, Hashable {
    /// What went wrong, as a value-free identifier.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: String, Hashable, Sendable {
            case permissions = "audit.permissions"
            case io = "audit.io"
            case lockTimeout = "audit.lock-timeout"
            case corrupt = "audit.corrupt"
            case invalidEntry = "audit.invalid-entry"
            case missing = "audit.missing"
            case outOfRange = "audit.out-of-range"
        }
        fileprivate let backing: Backing
        fileprivate init(_ backing: Backing) { self.backing = backing }

        /// The log file or its directory denies access, is group/world writable, or is not a regular file.
        public static let permissions = Code(.permissions)
        /// The operating system reported an I/O failure.
        public static let io = Code(.io)
        /// Another process held the log's lock longer than the configured timeout.
        public static let lockTimeout = Code(.lockTimeout)
        /// A stored record does not parse, so the log cannot be extended or listed; run `cmkctl audit verify`.
        public static let corrupt = Code(.corrupt)
        /// An entry was refused: a field is too long or a detail looks like encoded key material.
        public static let invalidEntry = Code(.invalidEntry)
        /// The log was started (its anchor says so) but is now absent or holds no record.
        public static let missing = Code(.missing)
        /// A proof or root was asked for a leaf index or tree size beyond the log.
        public static let outOfRange = Code(.outOfRange)

        public var description: String { backing.rawValue }
    }

    /// The code; compare on this, never on ``reason``.
    public let code: Code
    /// Detail naming the file, line or field; never key material.
    public let reason: String
    /// The error that caused this one, if any.
    public let underlying: (any Error)?
    private let file: String
    private let line: Int

    public init(_ code: Code, _ reason: String, underlying: (any Error)? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    public var codeName: String { code.description }

    public var category: ErrorCategory {
        switch code.backing {
        case .io, .lockTimeout: return .transient
        case .permissions: return .configuration
        case .corrupt, .invalidEntry, .missing: return .internal
        case .outOfRange: return .configuration
        }
    }

    /// A short, value-free phrase for a status line: the code and what it means
    /// (`audit.corrupt: a record is broken, run cmkctl audit verify`). The full ``reason`` goes to
    /// the journal.
    public var summary: String {
        let meaning: String
        switch code.backing {
        case .permissions: meaning = "wrong type, owner or mode, or access denied; see the journal"
        case .io: meaning = "a system call failed; see the journal"
        case .lockTimeout: meaning = "another process holds its lock"
        case .corrupt: meaning = "a record is broken; run cmkctl audit verify"
        case .invalidEntry: meaning = "an entry was refused"
        case .missing: meaning = "the log has vanished or was emptied; restore it"
        case .outOfRange: meaning = "the index or size is beyond the log"
        }
        return "\(code): \(meaning)"
    }

    public var description: String {
        var text = "\(code): \(reason)"
        if let underlying { text += " [\(underlying)]" }
        return text
    }

    /// Where the error was raised (`Module/File.swift:line`).
    public var location: String { "\(file):\(line)" }

    public static func == (lhs: AuditError, rhs: AuditError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
