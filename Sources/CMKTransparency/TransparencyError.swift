/// An error from the transparency log code: a proof that does not verify or is malformed, a
/// signed note or checkpoint that does not parse or is not signed by the pinned key, a key
/// string that does not parse, or a hash store that fails. Equality compares the code only.
///
/// Messages name the field and what would be accepted; they never carry key material, note text
/// or record contents (names, key IDs, sizes and indices are public and may appear).
public struct TransparencyError: Error, Hashable, CustomStringConvertible {
    /// What went wrong, as a value-free identifier.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: String, Hashable, Sendable {
            case malformedProof = "transparency.malformed-proof"
            case proofMismatch = "transparency.proof-mismatch"
            case outOfRange = "transparency.out-of-range"
            case malformedNote = "transparency.malformed-note"
            case malformedCheckpoint = "transparency.malformed-checkpoint"
            case originMismatch = "transparency.origin-mismatch"
            case malformedKey = "transparency.malformed-key"
            case unverifiedNote = "transparency.unverified-note"
            case badSignature = "transparency.bad-signature"
            case store = "transparency.store"
        }
        fileprivate let backing: Backing
        fileprivate init(_ backing: Backing) { self.backing = backing }

        /// A proof has the wrong number of hashes, or asks about an index or sizes it cannot cover
        /// (index ≥ size, old size > new size).
        public static let malformedProof = Code(.malformedProof)
        /// A proof is well formed but its walk does not end at the root it claims to lead to.
        public static let proofMismatch = Code(.proofMismatch)
        /// A root or proof was asked for a size or index beyond the tree.
        public static let outOfRange = Code(.outOfRange)
        /// A signed note is not valid UTF-8, holds control characters, is too large, lacks the
        /// blank line before its signatures, or has a malformed signature line.
        public static let malformedNote = Code(.malformedNote)
        /// A checkpoint body does not follow c2sp.org/tlog-checkpoint (origin, plain decimal size,
        /// canonical base64 of a 32-byte root, non-empty extension lines).
        public static let malformedCheckpoint = Code(.malformedCheckpoint)
        /// The checkpoint's origin is not the one the verifier pinned.
        public static let originMismatch = Code(.originMismatch)
        /// A verifier or signer key string does not parse, or its key ID does not match its key.
        public static let malformedKey = Code(.malformedKey)
        /// No signature line of the note is by the pinned key.
        public static let unverifiedNote = Code(.unverifiedNote)
        /// A signature line names the pinned key but its signature does not verify.
        public static let badSignature = Code(.badSignature)
        /// The hash store failed or lacks a hash it should hold.
        public static let store = Code(.store)

        public var description: String { backing.rawValue }
    }

    /// The code; compare on this, never on ``reason``.
    public let code: Code
    /// Detail naming the field, size or index and what would be accepted; never key material.
    public let reason: String
    /// The error that caused this one (a hash store's own error), if any.
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

    public var description: String {
        var text = "\(code): \(reason)"
        if let underlying { text += " [\(underlying)]" }
        return text
    }

    /// Where the error was raised (`Module/File.swift:line`).
    public var location: String { "\(file):\(line)" }

    public static func == (lhs: TransparencyError, rhs: TransparencyError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
