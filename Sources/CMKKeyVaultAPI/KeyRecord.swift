import CryptoExtras
import Foundation

/// An RSA private key shared between concurrent requests.
///
/// `@unchecked Sendable` is safe: the only stored property is an immutable
/// `_RSA.Encryption.PrivateKey`, whose sole stored property is swift-crypto's
/// `BoringSSLRSAPrivateKey`, which swift-crypto itself declares `Sendable` (a BoringSSL `RSA`
/// object, documented as safe for concurrent operations). The struct only lacks the conformance.
public final class SharedPrivateKey: @unchecked Sendable {
    public let key: _RSA.Encryption.PrivateKey
    public init(_ key: _RSA.Encryption.PrivateKey) { self.key = key }
}

/// One version of a key: a real RSA key pair held in memory, plus its attributes.
public struct KeyVersionRecord: Sendable {
    public let version: String
    public let kty: String
    public let keySize: Int
    public let privateKey: SharedPrivateKey
    public let n: Data
    public let e: Data
    public var keyOps: [String]
    public var enabled: Bool
    public var notBefore: Int?
    public var expires: Int?
    public let created: Int
    public var updated: Int
    public var tags: [String: String]?
}

/// A key: its versions in creation order (the last one is the current version).
public struct KeyRecord: Sendable {
    public let name: String
    public var versions: [KeyVersionRecord]

    public var latest: KeyVersionRecord { versions[versions.count - 1] }

    /// Versions compare case-insensitively, like every Key Vault identifier.
    public func index(of version: String) -> Int? { versions.firstIndex { $0.version == version.lowercased() } }
}

/// A soft-deleted key, recoverable until `scheduledPurgeDate`.
public struct DeletedKeyRecord: Sendable {
    public var key: KeyRecord
    public let deletedDate: Int
    public let scheduledPurgeDate: Int
}

/// The wire shapes of the keys API (names and order as Azure sends them).
enum Wire {
    struct JSONWebKey: Encodable {
        var kid: String
        var kty: String
        var key_ops: [String]
        var n: String
        var e: String
    }

    struct Attributes: Encodable {
        var enabled: Bool
        var key_size: Int
        var nbf: Int?
        var exp: Int?
        var created: Int
        var updated: Int
        var recoveryLevel: String
        var recoverableDays: Int
        var exportable: Bool
        var hsmPlatform: String
    }

    struct KeyBundle: Encodable {
        var key: JSONWebKey
        var attributes: Attributes
        var tags: [String: String]?
    }

    struct DeletedKeyBundle: Encodable {
        var recoveryId: String
        var deletedDate: Int
        var scheduledPurgeDate: Int
        var key: JSONWebKey
        var attributes: Attributes
        var tags: [String: String]?
    }

    struct KeyItem: Encodable {
        var kid: String
        var attributes: Attributes
        var tags: [String: String]?
    }

    struct Page<Item: Encodable>: Encodable {
        var value: [Item]
        var nextLink: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(value, forKey: .value)
            try container.encode(nextLink, forKey: .nextLink)  // Azure sends "nextLink": null on the last page
        }

        private enum CodingKeys: String, CodingKey { case value, nextLink }
    }

    struct KeyOperationResult: Encodable {
        var kid: String
        var value: String
    }

    // Request bodies: every field optional, so a missing or mistyped field gets a BadParameter naming it.

    struct AttributesInput: Decodable {
        var enabled: Bool?
        var nbf: Int?
        var exp: Int?
        var exportable: Bool?
    }

    struct CreateKey: Decodable {
        var kty: String?
        var key_size: Int?
        var public_exponent: Int?
        var key_ops: [String]?
        var attributes: AttributesInput?
        var tags: [String: String]?
    }

    struct UpdateKey: Decodable {
        var key_ops: [String]?
        var attributes: AttributesInput?
        var tags: [String: String]?
    }

    struct KeyOperation: Decodable {
        var alg: String?
        var value: String?
    }
}

/// Base64url without padding, as JWK members and key operation values are sent. Decoding is
/// lenient as Azure Key Vault's is: base64url or standard base64, padded or not (the identity
/// store's strict `CMKIdentity.Base64URL` is for tokens, which must have one spelling).
public enum KeyVaultBase64URL {
    public static func encode(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Accepts base64url or standard base64, padded or not.
    public static func decode(_ text: String) -> Data? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.count % 4) % 4)
        return Data(base64Encoded: standard)
    }
}
