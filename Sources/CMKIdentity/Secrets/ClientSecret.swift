import Crypto
import Foundation

/// A generated client secret: 256 bits from the system's CSPRNG (`getrandom(2)` through
/// `SystemRandomNumberGenerator`), written as 43 characters of unpadded base64url. It is handed
/// out once and never stored: the store keeps ``hash(of:)`` only. Prints `<redacted>`.
public struct ClientSecret: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The number of random bytes (256 bits).
    public static let byteCount = 32
    /// The number of characters of a secret's text.
    public static let textLength = 43
    /// How many leading characters are kept as the credential's `hint` (Microsoft Graph's).
    public static let hintLength = 3

    /// The secret as the client sends it. Show it once; never log it.
    public let text: String

    /// A fresh secret.
    public static func generate() -> ClientSecret {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8]()
        bytes.reserveCapacity(byteCount)
        for _ in 0..<(byteCount / 8) { withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) } }
        defer { for index in bytes.indices { bytes[index] = 0 } }
        return ClientSecret(text: Base64URL.encode(bytes))
    }

    init(text: String) { self.text = text }

    /// The first ``hintLength`` characters (Graph's `hint`), which leave 238 bits unknown.
    public var hint: String { String(text.prefix(Self.hintLength)) }

    /// What the store keeps of a secret: SHA-256 of its UTF-8 text (docs/vault-service.md,
    /// "Identities, credentials and tokens", says why a fast unsalted hash is enough here).
    public static func hash(of secretText: String) -> Data { Data(SHA256.hash(data: Data(secretText.utf8))) }

    /// Whether `secretText` hashes to `storedHash`, compared in constant time.
    public static func matches(_ secretText: String, storedHash: Data) -> Bool {
        ConstantTime.equal(hash(of: secretText), storedHash)
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "ClientSecret(<redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
