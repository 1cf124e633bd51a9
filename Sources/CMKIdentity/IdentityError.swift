import CMKCore

/// An error of the identity store or the token service. Equality compares the code only.
///
/// The detail names the field, file or client id and what would be accepted; it never holds a
/// secret, a secret's hash or key material (a test scans every description for them).
public struct IdentityError: CategorizedError, Hashable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: String, Hashable, Sendable {
            case administratorLimit = "identity.administrator-limit"
            case invalidName = "identity.invalid-name"
            case duplicateName = "identity.duplicate-name"
            case invalidEndDate = "identity.invalid-end-date"
            case invalidHost = "identity.invalid-host"
            case invalidAudience = "identity.invalid-audience"
            case notFound = "identity.not-found"
            case rotationPending = "identity.rotation-pending"
            case permissions = "identity.permissions"
            case misconfigured = "identity.misconfigured"
            case corrupt = "identity.corrupt"
            case io = "identity.io"
        }
        fileprivate let backing: Backing
        fileprivate init(_ backing: Backing) { self.backing = backing }

        /// An 11th administrator: at most ``IdentityStore/maximumAdministrators`` per tenant.
        public static let administratorLimit = Code(.administratorLimit)
        /// A display name or key name outside its documented length or character set.
        public static let invalidName = Code(.invalidName)
        /// A name already taken (a live key of the service principal, an administrator, a host).
        public static let duplicateName = Code(.duplicateName)
        /// A key's end date not after its start, or more than two years after it.
        public static let invalidEndDate = Code(.invalidEndDate)
        /// A platform identity's host name is not a DNS host name.
        public static let invalidHost = Code(.invalidHost)
        /// A token's audience (the resource) is empty, too long or not printable.
        public static let invalidAudience = Code(.invalidAudience)
        /// No administrator, platform identity or key with that id.
        public static let notFound = Code(.notFound)
        /// A signing-key rotation while the key added by the previous one has not begun to sign.
        public static let rotationPending = Code(.rotationPending)
        /// A file of the store is accessible to others, or access was denied.
        public static let permissions = Code(.permissions)
        /// The state directory or the store's schema is not usable by this version.
        public static let misconfigured = Code(.misconfigured)
        /// Stored data does not parse or breaks the store's invariants.
        public static let corrupt = Code(.corrupt)
        /// The operating system or SQLite failed (a busy lock, a full disk).
        public static let io = Code(.io)

        public var description: String { backing.rawValue }
    }

    public let code: Code
    /// Detail naming the field, file or id and the fix; never a secret.
    public let detail: String
    public let underlying: (any Error)?
    private let file: String
    private let line: Int

    public init(_ code: Code, _ detail: String, underlying: (any Error)? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.detail = detail
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    public var codeName: String { code.description }

    public var category: ErrorCategory {
        switch code.backing {
        case .administratorLimit, .invalidName, .duplicateName, .invalidEndDate, .invalidHost, .invalidAudience, .notFound,
             .rotationPending, .permissions, .misconfigured:
            return .configuration
        case .io: return .transient
        case .corrupt: return .internal
        }
    }

    /// Whether the caller's input was refused (a usage error), as opposed to a store failure.
    public var isInputRefusal: Bool {
        switch code.backing {
        case .invalidName, .duplicateName, .invalidEndDate, .invalidHost, .invalidAudience, .notFound: return true
        default: return false
        }
    }

    public var description: String {
        var text = "\(code): \(detail)"
        if let underlying { text += " [\(underlying)]" }
        return text
    }

    public var location: String { "\(file):\(line)" }

    public static func == (lhs: IdentityError, rhs: IdentityError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
