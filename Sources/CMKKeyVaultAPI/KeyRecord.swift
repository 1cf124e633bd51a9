import CryptoExtras
import Foundation

/// The private half of a key version, as a store keeps it: in memory (``SharedPrivateKey``) or
/// sealed on disk and opened on first use (cmk-vault's local vault).
public protocol KeyPairHandle: Sendable {
    /// The RSA private key; a store that cannot open it (a wrong master key, a tampered file)
    /// throws, and the API answers 500 without details.
    func privateKey() throws -> _RSA.Encryption.PrivateKey
}

/// An RSA private key shared between concurrent requests.
///
/// `@unchecked Sendable` is safe: the only stored property is an immutable
/// `_RSA.Encryption.PrivateKey`, whose sole stored property is swift-crypto's
/// `BoringSSLRSAPrivateKey`, which swift-crypto itself declares `Sendable` (a BoringSSL `RSA`
/// object, documented as safe for concurrent operations). The struct only lacks the conformance.
public final class SharedPrivateKey: KeyPairHandle, @unchecked Sendable {
    public let key: _RSA.Encryption.PrivateKey
    public init(_ key: _RSA.Encryption.PrivateKey) { self.key = key }
    public func privateKey() -> _RSA.Encryption.PrivateKey { key }
}

/// One version of a key: its RSA key pair, plus its attributes. Dates are whole seconds since 1970.
public struct KeyVersionRecord: Sendable {
    public let version: String
    public let kty: String
    public let keySize: Int
    public let privateKey: any KeyPairHandle
    public let n: Data
    public let e: Data
    public var keyOps: [String]
    public var enabled: Bool
    public var notBefore: Int?
    public var expires: Int?
    public let created: Int
    public var updated: Int
    public var tags: [String: String]?

    public init(version: String, kty: String, keySize: Int, privateKey: any KeyPairHandle, n: Data, e: Data, keyOps: [String], enabled: Bool,
                notBefore: Int?, expires: Int?, created: Int, updated: Int, tags: [String: String]?) {
        self.version = version
        self.kty = kty
        self.keySize = keySize
        self.privateKey = privateKey
        self.n = n
        self.e = e
        self.keyOps = keyOps
        self.enabled = enabled
        self.notBefore = notBefore
        self.expires = expires
        self.created = created
        self.updated = updated
        self.tags = tags
    }
}

/// A key: its versions in creation order (the last one is the current version), its rotation
/// policy, and which versions' expiry warnings were given.
public struct KeyRecord: Sendable {
    public let name: String
    public var versions: [KeyVersionRecord]
    /// Set by `PUT /keys/{name}/rotationpolicy`; nil: Azure's default policy (Notify 30 days
    /// before expiry, no automated rotation). Kept through delete and recover.
    public var rotationPolicy: RotationPolicy?
    /// The version whose near-expiry warning the service gave (once per version, across restarts).
    public var nearExpiryWarned: String?
    /// The version whose expiry warning the service gave.
    public var expiredWarned: String?

    public init(name: String, versions: [KeyVersionRecord], rotationPolicy: RotationPolicy? = nil, nearExpiryWarned: String? = nil,
                expiredWarned: String? = nil) {
        self.name = name
        self.versions = versions
        self.rotationPolicy = rotationPolicy
        self.nearExpiryWarned = nearExpiryWarned
        self.expiredWarned = expiredWarned
    }

    public var latest: KeyVersionRecord { versions[versions.count - 1] }

    /// Versions compare case-insensitively, like every Key Vault identifier.
    public func index(of version: String) -> Int? { versions.firstIndex { $0.version == version.lowercased() } }
}

/// A key's rotation policy as `PUT /keys/{name}/rotationpolicy` set it: durations are ISO 8601
/// as the caller wrote them (Azure answers them unchanged); dates are whole seconds since 1970.
public struct RotationPolicy: Sendable, Equatable, Codable {
    public enum ActionType: String, Sendable, Codable {
        case rotate = "Rotate"
        case notify = "Notify"
    }

    /// One lifetime action: exactly one of the two triggers is set.
    public struct LifetimeAction: Sendable, Equatable, Codable {
        public var type: ActionType
        public var timeAfterCreate: String?
        public var timeBeforeExpiry: String?

        public init(type: ActionType, timeAfterCreate: String? = nil, timeBeforeExpiry: String? = nil) {
            self.type = type
            self.timeAfterCreate = timeAfterCreate
            self.timeBeforeExpiry = timeBeforeExpiry
        }
    }

    public var lifetimeActions: [LifetimeAction]
    /// `attributes.expiryTime`: a new version made by a rotation expires this long after its creation.
    public var expiryTime: String?
    public var created: Int
    public var updated: Int

    public init(lifetimeActions: [LifetimeAction], expiryTime: String?, created: Int, updated: Int) {
        self.lifetimeActions = lifetimeActions
        self.expiryTime = expiryTime
        self.created = created
        self.updated = updated
    }

    /// Azure's Notify action when a policy names none: 30 days before expiry.
    public static let defaultNotify = LifetimeAction(type: .notify, timeBeforeExpiry: "P30D")
}

/// A soft-deleted key, recoverable until `scheduledPurgeDate`.
public struct DeletedKeyRecord: Sendable {
    public var key: KeyRecord
    public let deletedDate: Int
    public let scheduledPurgeDate: Int

    public init(key: KeyRecord, deletedDate: Int, scheduledPurgeDate: Int) {
        self.key = key
        self.deletedDate = deletedDate
        self.scheduledPurgeDate = scheduledPurgeDate
    }
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
