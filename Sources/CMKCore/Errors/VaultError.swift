import Foundation

/// An error from a key vault provider. Equality compares the code only.
public struct VaultError: CategorizedError, Hashable {
    /// What went wrong, as a value-free code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: String, Hashable, Sendable {
            case notFound = "vault.not-found"
            case deleted = "vault.key-deleted"
            case disabled = "vault.version-disabled"
            case forbidden = "vault.forbidden"
            case unauthorized = "vault.unauthorized"
            case throttled = "vault.throttled"
            case unavailable = "vault.unavailable"
            case invalidInput = "vault.invalid-input"
            case unsupported = "vault.unsupported"
            case conflict = "vault.conflict"
            case corrupt = "vault.corrupt-state"
            case misconfigured = "vault.misconfigured"
            case descriptorsExhausted = "local.descriptors-exhausted"
        }
        fileprivate let backing: Backing
        fileprivate init(_ backing: Backing) { self.backing = backing }

        /// The key, version or deleted key does not exist.
        public static let notFound = Code(.notFound)
        /// The key is soft-deleted (pulled); its versions cannot be used until it is recovered.
        public static let deleted = Code(.deleted)
        /// The version is disabled; it can neither wrap nor unwrap.
        public static let disabled = Code(.disabled)
        /// The credentials are valid but lack permission (HTTP 403 and alike).
        public static let forbidden = Code(.forbidden)
        /// The credentials were rejected (HTTP 401 after authentication).
        public static let unauthorized = Code(.unauthorized)
        /// The vault asked us to slow down (HTTP 429); see ``VaultError/retryAfter``.
        public static let throttled = Code(.throttled)
        /// The vault could not be reached or failed (timeouts, 5xx, connection errors).
        public static let unavailable = Code(.unavailable)
        /// The request was malformed (bad ciphertext, bad parameter).
        public static let invalidInput = Code(.invalidInput)
        /// The provider does not offer this operation.
        public static let unsupported = Code(.unsupported)
        /// The operation conflicts with the key's state (for example, purge before its date).
        public static let conflict = Code(.conflict)
        /// The vault's own state is unreadable (corrupt file, bad seal, malformed response).
        public static let corrupt = Code(.corrupt)
        /// The provider is set up wrongly (master key missing, bad permissions, bad endpoint).
        public static let misconfigured = Code(.misconfigured)
        /// Not the vault's doing: this process ran out of file descriptors (EMFILE/ENFILE) before
        /// the call could be made (``DescriptorExhaustion``). Transient; the text names the limit.
        public static let descriptorsExhausted = Code(.descriptorsExhausted)

        public var description: String { backing.rawValue }
    }

    /// The value-free code.
    public let code: Code
    /// Detail for humans: names the key, version, file or field; never contains key material.
    public let reason: String
    /// When the vault asked us to retry after a delay (HTTP `Retry-After`).
    public let retryAfter: Duration?
    /// The error underneath, if any.
    public let underlying: (any Error)?
    private let file: String
    private let line: Int

    /// An `.unavailable` error whose underlying error is a descriptor shortage becomes
    /// ``Code/descriptorsExhausted``, its reason saying that the limit is local: providers need not
    /// tell EMFILE apart themselves, only pass the system error on as `underlying`.
    public init(_ code: Code, _ reason: String, retryAfter: Duration? = nil, underlying: (any Error)? = nil,
                file: String = #fileID, line: Int = #line) {
        if code == .unavailable, DescriptorExhaustion.isPresent(in: underlying) {
            self.code = .descriptorsExhausted
            self.reason = "\(reason); \(DescriptorExhaustion.remedy)"
        } else {
            self.code = code
            self.reason = reason
        }
        self.retryAfter = retryAfter
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    public var codeName: String { code.description }

    public var category: ErrorCategory {
        switch code.backing {
        case .notFound, .deleted, .disabled, .forbidden, .unauthorized: return .revoked
        case .throttled, .unavailable, .descriptorsExhausted: return .transient
        case .invalidInput, .unsupported, .misconfigured: return .configuration
        case .conflict: return .configuration
        case .corrupt: return .internal
        }
    }

    public var description: String {
        var text = "\(code): \(reason)"
        if let retryAfter { text += " (retry after \(retryAfter))" }
        if let underlying { text += " [\(underlying)]" }
        return text
    }

    /// Where the error was raised, for debug logs.
    public var location: String { "\(file):\(line)" }

    public static func == (lhs: VaultError, rhs: VaultError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
