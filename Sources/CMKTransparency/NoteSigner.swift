import Crypto
import Foundation

/// The private half of a signed-note Ed25519 key: signs checkpoints. Generated once per
/// deployment; its ``verifier`` is published for customers to pin.
///
/// Its text form, the *signer key*, is `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ seed)>`,
/// the format of Go's `golang.org/x/mod/sumdb/note`. It is a secret: store it like one. The
/// description prints only the name and key ID.
public struct NoteSigner: Sendable, CustomStringConvertible {
    /// The key name, also the name in signature lines.
    public var name: String { verifier.name }
    /// The key ID.
    public var keyID: UInt32 { verifier.keyID }
    /// The public half, to publish.
    public let verifier: NoteVerifier
    private let privateKey: Curve25519.Signing.PrivateKey

    /// A new random key named `name`.
    public static func generate(name: String) throws -> NoteSigner {
        try NoteSigner(name: name, privateKey: Curve25519.Signing.PrivateKey())
    }

    private init(name: String, privateKey: Curve25519.Signing.PrivateKey) throws {
        self.verifier = try NoteVerifier(name: name, publicKey: Array(privateKey.publicKey.rawRepresentation))
        self.privateKey = privateKey
    }

    /// Parses a signer key `PRIVATE+KEY+<name>+<8 lowercase hex digits>+<base64(0x01 ‖ seed)>`.
    /// The key ID must match the name and the public key derived from the seed. Errors never
    /// repeat the key.
    public init(signerKey: String) throws {
        let parts = signerKey.split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY" else {
            throw TransparencyError(.malformedKey, "a signer key is PRIVATE+KEY+<name>+<key ID>+<key>")
        }
        try NoteVerifier.checkName(String(parts[2]), field: "signer key name")
        guard let keyID = NoteVerifier.parseKeyID(parts[3]) else {
            throw TransparencyError(.malformedKey, "the signer key's key ID must be 8 lowercase hex digits")
        }
        guard let seed = NoteVerifier.canonicalBase64(parts[4]), seed.first == NoteVerifier.ed25519Type, seed.count == 33,
              let privateKey = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed.dropFirst())
        else {
            throw TransparencyError(.malformedKey, "the signer key's key must be canonical base64 of 0x01 and a 32-byte Ed25519 seed")
        }
        try self.init(name: String(parts[2]), privateKey: privateKey)
        guard self.keyID == keyID else {
            throw TransparencyError(.malformedKey, "the signer key's key ID \(NoteVerifier.hex(keyID)) does not match its name and key")
        }
    }

    /// The signer key text. Secret: whoever holds it can sign checkpoints in the log's name.
    public var signerKey: String {
        "PRIVATE+KEY+\(name)+\(NoteVerifier.hex(keyID))+\(Data([NoteVerifier.ed25519Type] + Array(privateKey.rawRepresentation)).base64EncodedString())"
    }

    /// The 64-byte Ed25519 signature of `message` (without the key ID prefix).
    public func signature(for message: some DataProtocol) throws -> [UInt8] {
        Array(try privateKey.signature(for: message))
    }

    public var description: String { "NoteSigner(\(name)+\(NoteVerifier.hex(keyID)), <redacted>)" }
}
