import Crypto
import Foundation

extension TokenService {
    /// Checks a bearer token for a request to `audience` at `now`: its form, `alg` ES256, a
    /// published `kid`, the signature, `iss` and `tid`, `aud`, `nbf` and `exp` (with
    /// ``clockLeeway``), and, in the store, that the credential it names is still live and its
    /// client still exists with the same role. Throws only when the store fails.
    public func verify(_ token: String, audience: String, at now: Date = Date()) throws -> TokenVerification {
        guard token.utf8.count <= Self.maximumTokenLength else { return .refused(.malformed) }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Base64URL.decode(parts[0]), let payload = Base64URL.decode(parts[1]),
              let header = try? JSONDecoder().decode(JOSEHeader.self, from: headerBytes) else { return .refused(.malformed) }
        guard header.alg == "ES256", header.typ == nil || header.typ == "JWT" else { return .refused(.unsupportedAlgorithm) }
        guard let kid = header.kid, let key = keys.publishedKeys(at: now).first(where: { $0.kid == kid }) else { return .refused(.unknownKey) }
        guard let signatureBytes = Base64URL.decode(parts[2]), signatureBytes.count == 64,
              let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signatureBytes),
              key.publicKey.isValidSignature(signature, for: Data("\(parts[0]).\(parts[1])".utf8)) else { return .refused(.badSignature) }
        guard let claims = try? JSONDecoder().decode(AccessTokenClaims.self, from: payload), claims.roles.count == 1,
              let role = Role(rawValue: claims.roles[0]), claims.sub == claims.oid, claims.sub == claims.appid else { return .refused(.malformed) }
        guard claims.iss == issuer, claims.tid == store.tenant.tenantID else { return .refused(.wrongIssuer) }
        guard claims.aud == audience else { return .refused(.wrongAudience) }
        let seconds = now.timeIntervalSince1970
        guard seconds < Double(claims.exp) + Self.clockLeeway else { return .refused(.expired) }
        guard seconds >= Double(claims.nbf) - Self.clockLeeway else { return .refused(.notYetValid) }
        switch try store.credentialStatus(clientID: claims.sub, credentialID: claims.cred, role: role, at: now) {
        case .live:
            return .valid(VerifiedToken(principal: Principal(role: role, clientID: claims.sub, credentialID: claims.cred), claims: claims))
        case .revoked: return .refused(.credentialRevoked)
        case .expired: return .refused(.credentialExpired)
        case .principalRemoved: return .refused(.principalRemoved)
        }
    }
}
