/// What a caller asks ``SecurityLog/append(_:)`` to record. The log adds `seq`, `time`, `prev`
/// and `hash`.
///
/// `details` is for small values that help an operator (object counts, a DEK id, a command
/// line verb). It must never carry key material: ``SecurityLog/append(_:)`` refuses a detail
/// value longer than ``SecurityLogEntry/maximumDetailLength`` characters or one that looks like an
/// encoded key: a run of ``SecurityLogEntry/suspiciousRunLength`` or more characters from
/// `A–Z a–z 0–9 + =`, or from `A–Z a–z 0–9 + / =` when that run holds both an upper-case letter and
/// a digit (base64). Lower-case paths such as `/var/lib/cmk-syncer/state` pass.
public struct SecurityLogEntry: Sendable, Hashable {
    /// The longest accepted detail key or value, in characters.
    public static let maximumDetailLength = 256
    /// The shortest run of hex/base64 characters that makes a detail value look like key material.
    /// A 256-bit key is 64 hex or 44 base64 characters; a DEK id (32 hex digits) passes.
    public static let suspiciousRunLength = 40
    /// The longest accepted `account`, `key`, `version` or `previousVersion`, in characters.
    public static let maximumFieldLength = 1024

    /// What happened.
    public var event: SecurityEvent
    /// The storage account concerned, if any.
    public var account: String?
    /// The root key concerned, by name.
    public var key: String?
    /// The key version concerned (for a rebind: the new one).
    public var version: String?
    /// For a rebind: the version the account was bound to before.
    public var previousVersion: String?
    /// Who did it.
    public var actor: SecurityActor
    /// Small extra values; never key material (see the type's documentation).
    public var details: [String: String]

    public init(
        event: SecurityEvent,
        account: String? = nil,
        key: String? = nil,
        version: String? = nil,
        previousVersion: String? = nil,
        actor: SecurityActor = .daemon,
        details: [String: String] = [:]
    ) {
        self.event = event
        self.account = account
        self.key = key
        self.version = version
        self.previousVersion = previousVersion
        self.actor = actor
        self.details = details
    }

    /// Throws `.invalidEntry` if a field is too long or a detail looks like key material.
    /// The message names the field, never its value.
    public func validate() throws(AuditError) {
        if let problem = lengthProblem() { throw AuditError(.invalidEntry, problem.message) }
        for (name, value) in details where Self.looksLikeKeyMaterial(value) {
            throw AuditError(.invalidEntry, "security-log detail '\(name)' looks like hex- or base64-encoded key material; log an id or a short fingerprint instead")
        }
    }

    /// The first field longer (or shorter) than a record may hold, in the words of the message:
    /// what ``validate()`` refuses to append and `verify` refuses to read. Lengths count Unicode
    /// scalars (code points), as any language can: Python's `len`, not Swift's `String.count`.
    func lengthProblem() -> (field: String, message: String)? {
        let fields: [(String, String?)] = [("account", account), ("key", key), ("version", version), ("previousVersion", previousVersion)]
        for (name, value) in fields {
            if let count = value?.unicodeScalars.count, count > Self.maximumFieldLength {
                return (name, "security-log field '\(name)' has \(count) characters; at most \(Self.maximumFieldLength) are accepted")
            }
        }
        if case .user(let name) = actor, !(1...Self.maximumDetailLength).contains(name.unicodeScalars.count) {
            return ("actor", "security-log actor name must have 1–\(Self.maximumDetailLength) characters")
        }
        for (name, value) in details.sorted(by: { $0.key < $1.key }) {
            if !(1...Self.maximumDetailLength).contains(name.unicodeScalars.count) {
                return ("details", "security-log detail keys must have 1–\(Self.maximumDetailLength) characters")
            }
            if value.unicodeScalars.count > Self.maximumDetailLength {
                return ("details", "security-log detail '\(name)' has \(value.unicodeScalars.count) characters; at most \(Self.maximumDetailLength) are accepted")
            }
        }
        return nil
    }

    /// Whether `text` looks like hex- or base64-encoded key material (see the type's documentation).
    static func looksLikeKeyMaterial(_ text: String) -> Bool {
        var run = 0, slashRun = 0
        var slashRunHasUpper = false, slashRunHasDigit = false
        for byte in text.utf8 {
            let upper = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            let digit = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            let lower = (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            let encoded = upper || digit || lower || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "=")
            if encoded || byte == UInt8(ascii: "/") {
                slashRun += 1
                slashRunHasUpper = slashRunHasUpper || upper
                slashRunHasDigit = slashRunHasDigit || digit
            } else {
                slashRun = 0
                slashRunHasUpper = false
                slashRunHasDigit = false
            }
            run = encoded ? run + 1 : 0
            if run >= suspiciousRunLength { return true }
            if slashRun >= suspiciousRunLength, slashRunHasUpper, slashRunHasDigit { return true }
        }
        return false
    }
}
