import Crypto
import Foundation

/// A public EC key as a JWKS publishes it (RFC 7517, RFC 7518 §6.2): P-256 for ES256.
public struct JSONWebKey: Sendable, Hashable, Codable {
    public var kty = "EC"
    public var crv = "P-256"
    /// The x coordinate, 32 bytes, base64url.
    public var x: String
    /// The y coordinate, 32 bytes, base64url.
    public var y: String
    /// The key id: the key's RFC 7638 thumbprint.
    public var kid: String
    public var use = "sig"
    public var alg = "ES256"

    /// The JWK of `key`, whose `kid` is its RFC 7638 thumbprint.
    public init(_ key: P256.Signing.PublicKey) {
        let point = key.x963Representation  // 0x04 ‖ x ‖ y
        x = Base64URL.encode(point.dropFirst().prefix(32))
        y = Base64URL.encode(point.suffix(32))
        kid = Self.thumbprint(x: x, y: y)
    }

    /// RFC 7638: SHA-256 of the required members in lexicographic order, no white space, base64url.
    public static func thumbprint(x: String, y: String) -> String {
        Base64URL.encode(Data(SHA256.hash(data: Data(#"{"crv":"P-256","kty":"EC","x":"\#(x)","y":"\#(y)"}"#.utf8))))
    }
}

/// A JWK Set (RFC 7517 §5): what `…/discovery/v2.0/keys` serves.
public struct JSONWebKeySet: Sendable, Hashable, Codable {
    public var keys: [JSONWebKey]
}
