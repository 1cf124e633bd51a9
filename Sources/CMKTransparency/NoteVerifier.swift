import Crypto
import Foundation

/// The public half of a signed-note Ed25519 key (c2sp.org/signed-note): what a customer pins to
/// check checkpoints.
///
/// Its text form, the *verifier key*, is `<name>+<hex key ID>+<base64(0x01 ‖ public key)>`, the
/// format of Go's `golang.org/x/mod/sumdb/note`, so its tools accept it. The key ID is
/// `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]`, big-endian.
public struct NoteVerifier: Hashable, Sendable, CustomStringConvertible {
    /// The key name: non-empty, no Unicode spaces, no `+`.
    public let name: String
    /// The 32-bit key ID that prefixes this key's signatures.
    public let keyID: UInt32
    /// The 32-byte Ed25519 public key.
    public let publicKey: [UInt8]

    /// The signature type byte of Ed25519 in signed notes.
    static let ed25519Type: UInt8 = 0x01

    /// A verifier for a key `name` with the raw 32-byte Ed25519 `publicKey`.
    public init(name: String, publicKey: [UInt8]) throws {
        try Self.checkName(name, field: "key name")
        guard publicKey.count == 32, (try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey)) != nil else {
            throw TransparencyError(.malformedKey, "an Ed25519 public key is 32 bytes; this one has \(publicKey.count)")
        }
        self.name = name
        self.publicKey = publicKey
        self.keyID = Self.keyID(name: name, publicKey: publicKey)
    }

    /// Parses a verifier key `<name>+<8 lowercase hex digits>+<base64(0x01 ‖ 32-byte key)>`,
    /// splitting on the first two `+` only (base64 may contain `+`). The key ID must match the
    /// name and key.
    public init(verifierKey: String) throws {
        let parts = verifierKey.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw TransparencyError(.malformedKey, "a verifier key is <name>+<key ID>+<key>; this one has \(parts.count) part(s)")
        }
        try Self.checkName(String(parts[0]), field: "verifier key name")
        guard let keyID = Self.parseKeyID(parts[1]) else {
            throw TransparencyError(.malformedKey, "the verifier key's key ID must be 8 lowercase hex digits")
        }
        guard let key = Self.canonicalBase64(parts[2]), key.first == Self.ed25519Type, key.count == 33 else {
            throw TransparencyError(.malformedKey, "the verifier key's key must be canonical base64 of 0x01 and a 32-byte Ed25519 key")
        }
        try self.init(name: String(parts[0]), publicKey: Array(key.dropFirst()))
        guard self.keyID == keyID else {
            throw TransparencyError(.malformedKey, "the verifier key's key ID \(Self.hex(keyID)) does not match its name and key (\(Self.hex(self.keyID)))")
        }
    }

    /// The verifier key text, to publish and pin.
    public var verifierKey: String {
        "\(name)+\(Self.hex(keyID))+\(Data([Self.ed25519Type] + publicKey).base64EncodedString())"
    }

    public var description: String { verifierKey }

    /// Whether `signature` (64 bytes, without the key ID) is this key's signature of `message`.
    public func isValidSignature(_ signature: [UInt8], for message: some DataProtocol) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: message)
    }

    // MARK: Shared rules of key strings

    static func keyID(name: String, publicKey: [UInt8]) -> UInt32 {
        var hasher = SHA256()
        hasher.update(data: Array(name.utf8) + [0x0A, ed25519Type] + publicKey)
        return hasher.finalize().prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Key names are non-empty and hold no Unicode space, no `+` and no control character.
    static func checkName(_ name: String, field: String) throws {
        guard !name.isEmpty else { throw TransparencyError(.malformedKey, "the \(field) is empty") }
        guard !name.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0 == "+" || $0.value < 0x20 || $0.value == 0x7F }) else {
            throw TransparencyError(.malformedKey, "the \(field) contains a space, '+' or a control character")
        }
    }

    static func parseKeyID(_ text: Substring) -> UInt32? {
        guard text.utf8.count == 8, text.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return nil }
        return UInt32(text, radix: 16)
    }

    /// Standard padded base64 that re-encodes to the same text; nil otherwise.
    static func canonicalBase64(_ text: Substring) -> [UInt8]? {
        guard !text.isEmpty, let data = Data(base64Encoded: String(text)), data.base64EncodedString() == text else { return nil }
        return Array(data)
    }

    static func hex(_ keyID: UInt32) -> String {
        let digits = String(keyID, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}
