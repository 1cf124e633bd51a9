import CMKIdentity
import Crypto
import Foundation
import Testing

@Suite struct TokenTests {
    let audience = "https://vault.azure.net"
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    struct Setup {
        let directory: StateDirectory
        let store: IdentityStore
        let service: TokenService
        let key: PasswordCredential
        let principal: Principal
    }

    func setup() throws -> Setup {
        let directory = try StateDirectory()
        let store = try directory.store()
        let service = try directory.tokens(store)
        let key = try store.addServicePrincipalCredential(displayName: "app", endDateTime: now + 30 * day, at: now)
        let principal = try #require(try store.authenticate(clientID: store.tenant.servicePrincipalClientID, secret: key.secretText!, at: now).principal)
        return Setup(directory: directory, store: store, service: service, key: key, principal: principal)
    }

    /// The token with one segment replaced.
    func replacing(_ token: String, segment: Int, with text: String) -> String {
        var parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        parts[segment] = text
        return parts.joined(separator: ".")
    }

    func json(_ segment: Substring) throws -> [String: Any] {
        let bytes = try #require(Base64URL.decode(segment))
        return try #require(try JSONSerialization.jsonObject(with: bytes) as? [String: Any])
    }

    @Test func aTokenRoundTrips() throws {
        let s = try setup()
        let issued = try s.service.issue(for: s.principal, audience: audience, at: now)
        #expect(issued.expiresIn == 3600)
        #expect(!"\(issued)".contains(issued.token))
        let parts = issued.token.split(separator: ".")
        let header = try json(parts[0])
        #expect(header["alg"] as? String == "ES256" && header["typ"] as? String == "JWT")
        #expect(header["kid"] as? String == s.service.keys.signingKey(at: now).kid)
        let claims = try json(parts[1])
        let tenant = s.store.tenant.tenantID
        #expect(claims["iss"] as? String == "https://vault.test:8443/\(tenant)/v2.0")
        #expect(claims["aud"] as? String == audience)
        #expect(claims["tid"] as? String == tenant)
        for name in ["sub", "oid", "appid"] { #expect(claims[name] as? String == s.store.tenant.servicePrincipalClientID) }
        #expect(claims["roles"] as? [String] == ["servicePrincipal"])
        #expect(claims["cred"] as? String == s.key.keyId)
        #expect(claims["iat"] as? Int == 1_800_000_000 && claims["nbf"] as? Int == 1_800_000_000 && claims["exp"] as? Int == 1_800_003_600)
        #expect(try Base64URL.decode(parts[2])?.count == 64)  // raw r ‖ s, not DER
        let verified = try #require(try s.service.verify(issued.token, audience: audience, at: now + 10).token)
        #expect(verified.principal == s.principal)
        #expect(verified.claims == issued.claims)
        // A second service over the same files (another process) verifies it too.
        let other = try s.directory.tokens(try s.directory.store())
        #expect(try other.verify(issued.token, audience: audience, at: now).token?.principal == s.principal)
    }

    @Test func tamperedTokensAreRefused() throws {
        let s = try setup()
        let token = try s.service.issue(for: s.principal, audience: audience, at: now).token
        let parts = token.split(separator: ".").map(String.init)
        // One byte of the payload: a different role.
        var payload = try #require(Base64URL.decode(parts[1]))
        let role = try #require(payload.range(of: Data("servicePrincipal".utf8)))
        payload.replaceSubrange(role, with: Data("administrator\"x\"".utf8).prefix(16))
        var claims = Array(try #require(Base64URL.decode(parts[1])))
        claims[claims.count / 2] ^= 0x01
        var signature = Array(try #require(Base64URL.decode(parts[2])))
        signature[10] ^= 0x80
        let noneHeader = Base64URL.encode(Data(#"{"alg":"none","typ":"JWT"}"#.utf8))
        let hsHeader = Base64URL.encode(Data(#"{"alg":"HS256","typ":"JWT","kid":"\#(s.service.keys.signingKey(at: now).kid)"}"#.utf8))
        let otherKid = Base64URL.encode(Data(#"{"alg":"ES256","typ":"JWT","kid":"\#(JSONWebKey(P256.Signing.PrivateKey().publicKey).kid)"}"#.utf8))
        let cases: [(String, TokenRefusal)] = [
            (replacing(token, segment: 1, with: Base64URL.encode(payload)), .badSignature),
            (replacing(token, segment: 1, with: Base64URL.encode(claims)), .badSignature),
            (replacing(token, segment: 2, with: Base64URL.encode(signature)), .badSignature),
            (replacing(token, segment: 2, with: Base64URL.encode(signature.prefix(63))), .badSignature),
            (noneHeader + "." + parts[1] + ".", .unsupportedAlgorithm),
            (replacing(token, segment: 0, with: noneHeader), .unsupportedAlgorithm),
            (replacing(token, segment: 0, with: hsHeader), .unsupportedAlgorithm),
            (replacing(token, segment: 0, with: otherKid), .unknownKey),
            (token + "=", .badSignature),
            (parts[0] + "." + parts[1], .malformed),
            (String(repeating: "a", count: 9000), .malformed),
        ]
        for (tampered, refusal) in cases {
            #expect(try s.service.verify(tampered, audience: audience, at: now) == .refused(refusal), "\(refusal)")
        }
        #expect(try s.service.verify(token, audience: audience, at: now).token != nil)
    }

    @Test func aTokenFromAnotherKeySignedCorrectlyIsRefused() throws {
        let s = try setup()
        // Another deployment: same shape, its own key and tenant.
        let elsewhere = try StateDirectory()
        let foreign = try elsewhere.tokens(try elsewhere.store(), issuerBase: "https://vault.test:8443")
        let token = try foreign.issue(for: s.principal, audience: audience, at: now).token
        #expect(try s.service.verify(token, audience: audience, at: now) == .refused(.unknownKey))
    }

    @Test func expiryIssuerAndAudienceAreChecked() throws {
        let s = try setup()
        let token = try s.service.issue(for: s.principal, audience: audience, at: now).token
        #expect(try s.service.verify(token, audience: audience, at: now + 3600 + 59).token != nil)
        #expect(try s.service.verify(token, audience: audience, at: now + 3600 + 60) == .refused(.expired))
        #expect(try s.service.verify(token, audience: audience, at: now - 61) == .refused(.notYetValid))
        #expect(try s.service.verify(token, audience: "https://management.azure.com", at: now) == .refused(.wrongAudience))
        let otherIssuer = TokenService(store: s.store, keys: s.service.keys, issuerBase: "https://elsewhere.test")
        #expect(try otherIssuer.verify(token, audience: audience, at: now) == .refused(.wrongIssuer))
        #expect(identityError { _ = try s.service.issue(for: s.principal, audience: "", at: now) }?.code == .invalidAudience)
        #expect(identityError { _ = try s.service.issue(for: s.principal, audience: "a b", at: now) }?.code == .invalidAudience)
    }

    @Test func aRevokedOrExpiredCredentialStopsItsTokensAtOnce() throws {
        let s = try setup()
        let token = try s.service.issue(for: s.principal, audience: audience, at: now).token
        try s.store.revokeServicePrincipalCredential(keyID: s.key.keyId, at: now + 1)
        #expect(try s.service.verify(token, audience: audience, at: now + 2) == .refused(.credentialRevoked))

        // A key that ends while its token is still within its hour.
        let short = try s.store.addServicePrincipalCredential(displayName: "short", endDateTime: now + 600, at: now)
        let principal = try #require(try s.store.authenticate(clientID: s.principal.clientID, secret: short.secretText!, at: now).principal)
        let shortToken = try s.service.issue(for: principal, audience: audience, at: now).token
        #expect(try s.service.verify(shortToken, audience: audience, at: now + 599).token != nil)
        #expect(try s.service.verify(shortToken, audience: audience, at: now + 600) == .refused(.credentialExpired))
    }

    @Test func aRemovedClientsTokensAreRefused() throws {
        let s = try setup()
        let admin = try s.store.addAdministrator(name: "Ada", at: now)
        let principal = try #require(try s.store.authenticate(clientID: admin.clientID, secret: admin.secret.text, at: now).principal)
        let token = try s.service.issue(for: principal, audience: audience, at: now).token
        #expect(try s.service.verify(token, audience: audience, at: now).token?.principal.role == .administrator)
        let replaced = try s.store.replaceAdministratorSecret(clientID: admin.clientID, at: now + 1)
        #expect(try s.service.verify(token, audience: audience, at: now + 2) == .refused(.credentialRevoked))
        let second = try s.service.issue(for: Principal(role: .administrator, clientID: admin.clientID, credentialID: replaced.credentialID), audience: audience, at: now + 2).token
        try s.store.removeAdministrator(clientID: admin.clientID)
        #expect(try s.service.verify(second, audience: audience, at: now + 3) == .refused(.principalRemoved))
    }

    @Test func theJWKSPublishesTheSigningKey() throws {
        let s = try setup()
        let set = s.service.keys.keySet(at: now)
        #expect(set.keys.count == 1)
        let jwk = set.keys[0]
        #expect(jwk.kty == "EC" && jwk.crv == "P-256" && jwk.use == "sig" && jwk.alg == "ES256")
        #expect(Base64URL.decode(jwk.x)?.count == 32 && Base64URL.decode(jwk.y)?.count == 32)
        #expect(jwk.kid == s.service.keys.signingKey(at: now).kid)
        // The key file is private and holds the one key.
        let path = s.directory.path + "/" + TokenSigningKeys.fileName
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(try TokenSigningKeys(stateDirectory: s.directory.path).keys.map(\.kid) == [jwk.kid])
        // RFC 7638 thumbprint of the EC key of RFC 7517 Appendix A.1 (checked with Python's hashlib):
        #expect(JSONWebKey.thumbprint(x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0")
            == "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U")
    }

    @Test func aSigningKeyFileOthersCanReadIsRefused() throws {
        let s = try setup()
        let path = s.directory.path + "/" + TokenSigningKeys.fileName
        chmod(path, 0o640)
        #expect(identityError { _ = try TokenSigningKeys(stateDirectory: s.directory.path) }?.code == .permissions)
        chmod(path, 0o600)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        let corrupt = identityError { _ = try TokenSigningKeys(stateDirectory: s.directory.path) }
        #expect(corrupt?.code == .corrupt)
    }

    /// Rotation as docs/vault-service.md describes it: the successor is published before it
    /// signs, and the old key stays published for a token lifetime plus the leeway after.
    @Test func aSuccessorIsPublishedBeforeItSignsAndItsPredecessorStaysForAnHour() throws {
        let directory = try StateDirectory()
        let old = P256.Signing.PrivateKey(), new = P256.Signing.PrivateKey()
        let switchover = now + day
        func entry(_ key: P256.Signing.PrivateKey, _ activates: Date) -> [String: Any] {
            ["kid": JSONWebKey(key.publicKey).kid, "created": now.timeIntervalSince1970, "activates": activates.timeIntervalSince1970,
             "d": Base64URL.encode(key.rawRepresentation)]
        }
        let file = try JSONSerialization.data(withJSONObject: ["version": 1, "keys": [entry(new, switchover), entry(old, now)]])
        let path = directory.path + "/" + TokenSigningKeys.fileName
        #expect(FileManager.default.createFile(atPath: path, contents: file, attributes: [.posixPermissions: 0o600]))
        let keys = try TokenSigningKeys(stateDirectory: directory.path)
        let oldKid = JSONWebKey(old.publicKey).kid, newKid = JSONWebKey(new.publicKey).kid
        #expect(keys.signingKey(at: switchover - 1).kid == oldKid)
        #expect(keys.keySet(at: now).keys.map(\.kid) == [oldKid, newKid])
        #expect(keys.signingKey(at: switchover).kid == newKid)
        #expect(keys.keySet(at: switchover + 3659).keys.map(\.kid) == [oldKid, newKid])
        #expect(keys.keySet(at: switchover + 3660).keys.map(\.kid) == [newKid])

        let store = try directory.store()
        let service = TokenService(store: store, keys: keys, issuerBase: "https://vault.test")
        let key = try store.addServicePrincipalCredential(displayName: "app", at: now)
        let principal = try #require(try store.authenticate(clientID: store.tenant.servicePrincipalClientID, secret: key.secretText!, at: now).principal)
        let last = try service.issue(for: principal, audience: audience, at: switchover - 1)
        #expect(last.token.hasPrefix(Base64URL.encode(Data(#"{"alg":"ES256","kid":"\#(oldKid)""#.utf8)).dropLast(4)))
        #expect(try service.verify(last.token, audience: audience, at: switchover + 3600 + 58).token != nil)
        let first = try service.issue(for: principal, audience: audience, at: switchover)
        #expect(try service.verify(first.token, audience: audience, at: switchover + 3600 + 59).token != nil)
        #expect(try service.verify(first.token, audience: audience, at: switchover + 3600 + 60) == .refused(.expired))
    }
}
