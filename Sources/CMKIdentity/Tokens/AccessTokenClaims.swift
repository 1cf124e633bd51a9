import Foundation

/// The claims of an access token, named as the Microsoft identity platform's v2.0 tokens name them.
public struct AccessTokenClaims: Sendable, Hashable, Codable {
    /// `https://HOST/{tenant}/v2.0`.
    public var iss: String
    /// The resource the token is for, e.g. `https://vault.azure.net`.
    public var aud: String
    /// The client id (also `oid`, `appid` and `azp`: an application acting as itself).
    public var sub: String
    public var oid: String
    public var appid: String
    public var azp: String
    /// The tenant id.
    public var tid: String
    /// The client's one role (``Role``'s raw value).
    public var roles: [String]
    /// The key id of the credential the token was issued for: checked on every request.
    public var cred: String
    /// Issued at, not before, expires (seconds since 1970); `exp` = `iat` + 3600.
    public var iat: Int
    public var nbf: Int
    public var exp: Int
    /// A random id for this token.
    public var jti: String
    public var ver = "2.0"
    public var idtyp = "app"
}

/// The JOSE header of an access token.
struct JOSEHeader: Codable, Equatable {
    var alg: String
    var typ: String?
    var kid: String?
}

/// An issued token: the compact JWS and its dates. Prints without the token.
public struct AccessToken: Sendable, CustomStringConvertible {
    /// The compact JWS (`header.payload.signature`). A bearer credential: never log it.
    public let token: String
    public let claims: AccessTokenClaims
    public var issuedAt: Date { Date(timeIntervalSince1970: TimeInterval(claims.iat)) }
    public var expiresOn: Date { Date(timeIntervalSince1970: TimeInterval(claims.exp)) }
    /// Seconds from issue to expiry (the token endpoint's `expires_in`).
    public var expiresIn: Int { claims.exp - claims.iat }
    public var description: String { "access token \(claims.jti) for \(claims.sub) (<redacted>)" }
}

/// A token that passed ``TokenService/verify(_:audience:at:)``.
public struct VerifiedToken: Sendable, Hashable {
    public var principal: Principal
    public var claims: AccessTokenClaims
}

/// Why a token was refused.
public enum TokenRefusal: String, Sendable, Hashable, Codable, CaseIterable {
    /// Not three base64url segments of JSON, too long, or claims missing.
    case malformed
    /// The header's `alg` is not ES256 (e.g. `none`, `HS256`) or its `typ` is not JWT.
    case unsupportedAlgorithm = "unsupported-algorithm"
    /// No published key has the header's `kid`.
    case unknownKey = "unknown-key"
    /// The signature is not a valid ES256 signature of the header and payload.
    case badSignature = "bad-signature"
    /// `iss` or `tid` is not this tenant's.
    case wrongIssuer = "wrong-issuer"
    /// `aud` is not the resource being called.
    case wrongAudience = "wrong-audience"
    /// `exp` has passed (beyond the leeway).
    case expired
    /// `nbf` is ahead (beyond the leeway).
    case notYetValid = "not-yet-valid"
    /// The credential named by `cred` was revoked.
    case credentialRevoked = "credential-revoked"
    /// The credential named by `cred` has expired.
    case credentialExpired = "credential-expired"
    /// The client was removed, or the credential is not its own.
    case principalRemoved = "principal-removed"
}

/// The verdict of a verification: a value, not a thrown error.
public enum TokenVerification: Sendable, Hashable {
    case valid(VerifiedToken)
    case refused(TokenRefusal)

    public var token: VerifiedToken? {
        if case .valid(let token) = self { return token }
        return nil
    }

    public var refusal: TokenRefusal? {
        if case .refused(let refusal) = self { return refusal }
        return nil
    }
}
