/// An error from a storage driver or the data plane. Equality compares the code only.
public struct StorageError: CategorizedError, Hashable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: String, Hashable, Sendable {
            case conflict = "storage.conflict"
            case notFound = "storage.not-found"
            case alreadyExists = "storage.already-exists"
            case corrupt = "storage.corrupt"
            case permissions = "storage.permissions"
            case io = "storage.io"
            case invalidName = "storage.invalid-name"
            case suspended = "storage.account-suspended"
            case unknownDEK = "storage.unknown-dek"
            case wrongAccount = "storage.wrong-account"
            case misconfigured = "storage.misconfigured"
            case keyringMissing = "storage.keyring-missing"
        }
        fileprivate let backing: Backing
        fileprivate init(_ backing: Backing) { self.backing = backing }

        /// A conditional write lost: the keyring generation or object revision changed since it was read.
        public static let conflict = Code(.conflict)
        /// The object or keyring does not exist.
        public static let notFound = Code(.notFound)
        /// A create-only write found an existing keyring or object.
        public static let alreadyExists = Code(.alreadyExists)
        /// Stored data does not parse or fails its integrity checks.
        public static let corrupt = Code(.corrupt)
        /// File modes or ownership are unsafe or deny access.
        public static let permissions = Code(.permissions)
        /// The operating system or database reported an I/O failure.
        public static let io = Code(.io)
        /// An object name is not acceptable.
        public static let invalidName = Code(.invalidName)
        /// The account is suspended (its key was pulled); reads and writes are refused.
        public static let suspended = Code(.suspended)
        /// An object names a DEK the keyring does not hold.
        public static let unknownDEK = Code(.unknownDEK)
        /// An object belongs to another account or another object id.
        public static let wrongAccount = Code(.wrongAccount)
        /// The driver's location or settings are wrong.
        public static let misconfigured = Code(.misconfigured)
        /// The account had a keyring (it holds objects, or one was seen before) and has none now.
        public static let keyringMissing = Code(.keyringMissing)

        public var description: String { backing.rawValue }
    }

    public let code: Code
    /// Detail naming the account, object, file or generation; never key material.
    public let reason: String
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
        case .conflict, .io: return .transient
        case .suspended: return .revoked
        case .permissions, .invalidName, .misconfigured: return .configuration
        case .notFound, .alreadyExists, .corrupt, .unknownDEK, .wrongAccount, .keyringMissing: return .internal
        }
    }

    public var description: String {
        var text = "\(code): \(reason)"
        if let underlying { text += " [\(underlying)]" }
        return text
    }

    public var location: String { "\(file):\(line)" }

    public static func == (lhs: StorageError, rhs: StorageError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
