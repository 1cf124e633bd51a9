import Crypto
import Foundation

/// Issues and verifies the service's access tokens: JWTs in compact JWS form signed with ES256
/// (RFC 7518 §3.4: the signature is r ‖ s, 64 bytes, not DER), built by hand.
public struct TokenService: Sendable {
    /// A token's lifetime: `exp` = `iat` + 3600 (SPEC §11).
    public static let lifetime: TimeInterval = 3600
    /// How far `nbf` and `exp` may be off between clocks (and how far ahead a credential's start).
    public static let clockLeeway: TimeInterval = 60
    /// Longer tokens are refused before any decoding.
    public static let maximumTokenLength = 8192

    public let store: IdentityStore
    public let keys: TokenSigningKeys
    /// `iss`: `https://HOST/{tenant}/v2.0`.
    public let issuer: String

    /// - Parameter issuerBase: the service's origin as clients reach it, e.g. `https://vault.example:8443`.
    public init(store: IdentityStore, keys: TokenSigningKeys, issuerBase: String) {
        self.store = store
        self.keys = keys
        var base = issuerBase
        while base.hasSuffix("/") { base.removeLast() }
        issuer = "\(base)/\(store.tenant.tenantID)/v2.0"
    }

    /// A token for `principal` (just authenticated) to call `audience`, issued at `now`.
    public func issue(for principal: Principal, audience: String, at now: Date = Date()) throws -> AccessToken {
        guard (1...256).contains(audience.utf8.count), audience.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw IdentityError(.invalidAudience, "the resource \(Names.quoted(audience)) is not 1-256 printable ASCII characters without spaces, e.g. https://vault.azure.net")
        }
        let iat = Int(now.timeIntervalSince1970.rounded(.down))
        let claims = AccessTokenClaims(
            iss: issuer, aud: audience, sub: principal.clientID, oid: principal.clientID, appid: principal.clientID, azp: principal.clientID,
            tid: store.tenant.tenantID, roles: [principal.role.rawValue], cred: principal.credentialID,
            iat: iat, nbf: iat, exp: iat + Int(Self.lifetime), jti: Self.randomID())
        let key = keys.signingKey(at: now)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let header = try encoder.encode(JOSEHeader(alg: "ES256", typ: "JWT", kid: key.kid))
        let signingInput = Base64URL.encode(header) + "." + Base64URL.encode(try encoder.encode(claims))
        let signature = try key.privateKey.signature(for: Data(signingInput.utf8))
        return AccessToken(token: signingInput + "." + Base64URL.encode(signature.rawRepresentation), claims: claims)
    }

    /// 128 random bits, base64url (the `jti`).
    static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8]()
        for _ in 0..<2 { withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) } }
        return Base64URL.encode(bytes)
    }
}
