import CMKIdentity
import Foundation
import Testing

/// Our tokens as another implementation sees them: PyJWT with `cryptography` verifies the ES256
/// signature against our JWKS, and recomputes every `kid` as an RFC 7638 thumbprint.
@Suite struct InteroperabilityTests {
    static let verifier = #"""
    import base64, hashlib, json, sys
    try:
        import jwt
        from jwt import PyJWKSet
    except ImportError as error:
        sys.exit("PyJWT with cryptography is missing (scripts/install-deps.sh installs it): %s" % error)
    token, jwks_path, audience, issuer = sys.argv[1:5]
    jwks = json.load(open(jwks_path))
    for k in jwks["keys"]:
        canonical = json.dumps({n: k[n] for n in ("crv", "kty", "x", "y")}, sort_keys=True, separators=(",", ":")).encode()
        assert k["kid"] == base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode(), "kid is not the RFC 7638 thumbprint"
    header = jwt.get_unverified_header(token)
    key = next(k for k in PyJWKSet.from_dict(jwks).keys if k.key_id == header["kid"])
    claims = jwt.decode(token, key.key, algorithms=["ES256"], audience=audience, issuer=issuer,
                        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]}, leeway=60)
    print(json.dumps(claims, sort_keys=True))
    """#

    @Test func pyJWTVerifiesOurTokenAgainstOurJWKS() throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        let service = try directory.tokens(store)
        let admin = try store.addAdministrator(name: "Ada")
        let principal = try #require(try store.authenticate(clientID: admin.clientID, secret: admin.secret.text).principal)
        let token = try service.issue(for: principal, audience: "https://vault.azure.net").token
        let jwksPath = directory.path + "/jwks.json"
        try JSONEncoder().encode(service.keys.keySet(at: Date())).write(to: URL(fileURLWithPath: jwksPath))

        let output = try runPython(Self.verifier, [token, jwksPath, "https://vault.azure.net", service.issuer])
        let claims = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(claims["tid"] as? String == store.tenant.tenantID)
        #expect(claims["appid"] as? String == admin.clientID)
        #expect(claims["roles"] as? [String] == ["administrator"])
        #expect(claims["cred"] as? String == admin.credentialID)

        // PyJWT refuses what we refuse: a flipped signature bit, a wrong audience.
        var parts = token.split(separator: ".").map(String.init)
        var signature = Array(try #require(Base64URL.decode(parts[2])))
        signature[0] ^= 0x01
        parts[2] = Base64URL.encode(signature)
        #expect(throws: PythonFailed.self) { try runPython(Self.verifier, [parts.joined(separator: "."), jwksPath, "https://vault.azure.net", service.issuer]) }
        #expect(throws: PythonFailed.self) { try runPython(Self.verifier, [token, jwksPath, "https://management.azure.com", service.issuer]) }
    }
}
