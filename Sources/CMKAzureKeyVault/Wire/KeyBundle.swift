import Foundation

// The JSON documents of the Key Vault keys REST API that this provider reads and writes.
// Field names follow the service (`kid`, `kty`, `n`, `e`, `attributes`, `recoveryId`, ...).
// Unknown fields are ignored, so newer api-versions decode as long as these fields stay.

/// A JSON Web Key as Key Vault returns it (public half only).
struct JSONWebKey: Decodable, Sendable {
    var kid: String
    var kty: String?
    var n: String?
    var e: String?
}

/// `attributes` of a key version. Times are Unix seconds.
struct KeyAttributes: Codable, Sendable {
    var enabled: Bool?
    var nbf: Double?
    var exp: Double?
    var created: Double?
    var updated: Double?
    var recoveryLevel: String?
    var recoverableDays: Int?
}

/// `KeyBundle`: the answer to get, create, rotate, update, recover and import.
struct KeyBundle: Decodable, Sendable {
    var key: JSONWebKey
    var attributes: KeyAttributes
}

/// `DeletedKeyBundle`: the answer to delete and get-deleted-key.
struct DeletedKeyBundle: Decodable, Sendable {
    var key: JSONWebKey
    var attributes: KeyAttributes
    var recoveryId: String?
    var deletedDate: Double?
    var scheduledPurgeDate: Double?
}

/// `KeyItem`: one entry of a versions listing.
struct KeyItem: Decodable, Sendable {
    var kid: String
    var attributes: KeyAttributes
}

/// `KeyListResult`: one page of a listing; `nextLink` is absent or null on the last page.
struct KeyListResult: Decodable, Sendable {
    var value: [KeyItem]?
    var nextLink: String?
}

/// `KeyOperationResult`: the answer to wrapkey, unwrapkey, encrypt and decrypt.
struct KeyOperationResult: Decodable, Sendable {
    var kid: String?
    var value: String
}

/// `KeyOperationsParameters`: the body of wrapkey and unwrapkey.
struct KeyOperationParameters: Encodable, Sendable {
    var alg: String
    var value: String
}

/// `KeyVaultError`: `{"error": {"code": ..., "message": ..., "innererror": {...}}}`.
struct KeyVaultErrorBody: Decodable, Sendable {
    struct Detail: Decodable, Sendable {
        var code: String?
        var message: String?
        var innererror: Inner?
    }

    struct Inner: Decodable, Sendable {
        var code: String?
    }

    var error: Detail?
}

/// `KeyCreateParameters` (create) and `KeyUpdateParameters` (update) share `attributes`.
struct KeyCreateParameters: Encodable, Sendable {
    var kty: String
    var key_size: Int
    var key_ops: [String]
    var attributes: [String: Bool]
}

/// The version id is the last path segment of a `kid`
/// (`https://{vault}.vault.azure.net/keys/{name}/{version}`).
enum KeyIdentifier {
    static func version(of kid: String) -> String? {
        guard let path = URLComponents(string: kid)?.path else { return nil }
        let parts = path.split(separator: "/")
        guard parts.count >= 3, parts[parts.count - 3] == "keys" else { return nil }
        return String(parts[parts.count - 1])
    }
}
