import AsyncHTTPClient
import Crypto
import CMKKeyVaultAPI
import CryptoExtras
import Foundation
import NIOSSL
import Testing

@testable import CMKAzureTestServer

/// The token endpoint, client assertions, IMDS, token expiry, and TLS trust.
@Suite("Azure test server: identity and TLS")
struct IdentityTests {
    @Test("client credentials with the secret give a bearer token of the configured lifetime")
    func clientSecret() async throws {
        try await Harness.with({ $0.tokenLifetime = .seconds(1200) }) { harness in
            let reply = try await harness.send(.POST, harness.server.tokenEndpoint, query: nil, form: [
                "grant_type": "client_credentials", "client_id": harness.server.configuration.clientID, "client_secret": Harness.secret,
                "scope": "https://vault.azure.net/.default",
            ])
            #expect(reply.status == 200)
            #expect(reply.json["token_type"] as? String == "Bearer")
            #expect(reply.json["expires_in"] as? Int == 1200)
            #expect(reply.json["ext_expires_in"] as? Int == 1200)
            #expect((reply.json["access_token"] as? String)?.isEmpty == false)
        }
    }

    @Test("the client secret may also come as HTTP Basic authentication (client_secret_basic)")
    func clientSecretBasic() async throws {
        try await Harness.with { harness in
            let client = harness.server.configuration.clientID
            func post(secret: String) async throws -> Harness.Reply {
                let basic = Data("\(client):\(secret)".utf8).base64EncodedString()
                return try await harness.send(
                    .POST, harness.server.tokenEndpoint, query: nil,
                    form: ["grant_type": "client_credentials", "scope": "https://vault.azure.net/.default"], headers: [("Authorization", "Basic \(basic)")])
            }
            let good = try await post(secret: Harness.secret), wrong = try await post(secret: "wrong")
            #expect(good.status == 200)
            #expect(wrong.status == 401)
        }
    }

    @Test("wrong secret, client, tenant, grant and scope get Entra ID's errors")
    func tokenErrors() async throws {
        try await Harness.with { harness in
            let client = harness.server.configuration.clientID
            let good = ["grant_type": "client_credentials", "client_id": client, "client_secret": Harness.secret, "scope": "https://vault.azure.net/.default"]
            func post(_ changes: [String: String?], tenant: String? = nil) async throws -> Harness.Reply {
                var form = good
                for (name, value) in changes { form[name] = value }
                let endpoint = tenant.map { "\(harness.server.authorityHost)/\($0)/oauth2/v2.0/token" } ?? harness.server.tokenEndpoint
                return try await harness.send(.POST, endpoint, query: nil, form: form)
            }
            let secret = try await post(["client_secret": "wrong"])
            #expect(secret.status == 401 && secret.json["error"] as? String == "invalid_client")
            #expect((secret.json["error_codes"] as? [Int]) == [7000215])
            #expect(!(String(decoding: secret.body, as: UTF8.self).contains(Harness.secret)))
            let unknown = try await post(["client_id": "00000000-0000-0000-0000-000000000000"])
            #expect(unknown.status == 400 && unknown.json["error"] as? String == "unauthorized_client")
            let tenant = try await post([:], tenant: "11111111-1111-1111-1111-111111111111")
            #expect(tenant.status == 400 && (tenant.json["error_description"] as? String)?.hasPrefix("AADSTS90002") == true)
            let grant = try await post(["grant_type": "password"])
            #expect(grant.status == 400 && grant.json["error"] as? String == "unsupported_grant_type")
            let scope = try await post(["scope": "https://vault.azure.net"])
            #expect(scope.status == 400 && scope.json["error"] as? String == "invalid_scope")
            let otherAudience = try await post(["scope": "https://storage.azure.com/.default"])
            let token = try #require(otherAudience.json["access_token"] as? String)
            let refused = try await harness.send(.GET, "/keys/k/", token: token)
            #expect(refused.status == 401 && refused.errorMessage?.contains("audience") == true)
        }
    }

    @Test("an expired token gets 401 with the challenge; a fresh one works")
    func expiry() async throws {
        try await Harness.with({ $0.tokenLifetime = .seconds(600) }) { harness in
            let token = try await harness.token()
            #expect(try await harness.send(.GET, "/keys/k/", token: token).status == 404)
            harness.clock.advance(by: .seconds(600))
            let expired = try await harness.send(.GET, "/keys/k/", token: token)
            #expect(expired.status == 401)
            #expect(expired.errorMessage?.contains("TokenExpired") == true)
            #expect(expired.headers["WWW-Authenticate"].first?.contains("resource=\"https://vault.azure.net\"") == true)
            let fresh = try await harness.token()
            #expect(try await harness.send(.GET, "/keys/k/", token: fresh).status == 404)
            harness.server.revokeTokens()
            #expect(try await harness.send(.GET, "/keys/k/", token: token).status == 401)
        }
    }

    @Test("a certificate client assertion signed by the registered certificate gets a token; a forged one does not")
    func clientAssertion() async throws {
        try await Harness.with { harness in
            let keyPEM = try String(contentsOfFile: harness.ca.client.privateKeyPath, encoding: .utf8)
            let signer = try _RSA.Signing.PrivateKey(pemRepresentation: keyPEM)
            let client = harness.server.configuration.clientID
            func assertion(audience: String, signer: _RSA.Signing.PrivateKey) throws -> String {
                let header = ["alg": "RS256", "typ": "JWT", "x5t": harness.ca.client.thumbprintSHA1]
                let now = Int(harness.clock.now().timeIntervalSince1970)
                let claims: [String: Any] = ["aud": audience, "iss": client, "sub": client, "jti": UUID().uuidString, "nbf": now, "exp": now + 600]
                let signingInput = KeyVaultBase64URL.encode(try JSONSerialization.data(withJSONObject: header)) + "."
                    + KeyVaultBase64URL.encode(try JSONSerialization.data(withJSONObject: claims))
                let signature = try signer.signature(for: SHA256.hash(data: Data(signingInput.utf8)), padding: .insecurePKCS1v1_5)
                return signingInput + "." + KeyVaultBase64URL.encode(signature.rawRepresentation)
            }
            func post(_ jwt: String) async throws -> Harness.Reply {
                try await harness.send(.POST, harness.server.tokenEndpoint, query: nil, form: [
                    "grant_type": "client_credentials", "client_id": client, "scope": "https://vault.azure.net/.default",
                    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion": jwt,
                ])
            }
            let good = try await post(try assertion(audience: harness.server.tokenEndpoint, signer: signer))
            #expect(good.status == 200)
            let token = try #require(good.json["access_token"] as? String)
            #expect(try await harness.send(.GET, "/keys/k/", token: token).status == 404)
            let forged = try await post(try assertion(audience: harness.server.tokenEndpoint, signer: try _RSA.Signing.PrivateKey(keySize: .bits2048)))
            #expect(forged.status == 401 && (forged.json["error_codes"] as? [Int]) == [700027])
            let wrongAudience = try await post(try assertion(audience: "https://login.microsoftonline.com/x/oauth2/v2.0/token", signer: signer))
            #expect(wrongAudience.status == 401)
            let garbage = try await post("not.a.jwt")
            #expect(garbage.status == 401)
        }
    }

    @Test("IMDS gives a managed-identity token only with 'Metadata: true', over plain HTTP on loopback")
    func managedIdentity() async throws {
        try await Harness.with({ $0.managedIdentityClientID = "mi-client-id" }) { harness in
            let imds = try #require(harness.server.imdsEndpoint)
            #expect(imds.hasPrefix("http://127.0.0.1:"))
            let url = "\(imds)/metadata/identity/oauth2/token"
            let query = "api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net"
            let noHeader = try await harness.send(.GET, url, query: query)
            #expect(noHeader.status == 400 && noHeader.json["error"] as? String == "invalid_request")
            let reply = try await harness.send(.GET, url, query: query, headers: [("Metadata", "true")])
            #expect(reply.status == 200)
            #expect(reply.json["token_type"] as? String == "Bearer")
            #expect(reply.json["client_id"] as? String == "mi-client-id")
            #expect(reply.json["expires_in"] is String)
            let token = try #require(reply.json["access_token"] as? String)
            #expect(try await harness.send(.GET, "/keys/k/", token: token).status == 404)
            let other = try await harness.send(.GET, url, query: query + "&client_id=someone-else", headers: [("Metadata", "true")])
            #expect(other.status == 400)
        }
    }

    @Test("the tenant discovery document names the token endpoint on this server")
    func discovery() async throws {
        try await Harness.with { harness in
            let tenant = harness.server.configuration.tenantID
            let reply = try await harness.send(.GET, "\(harness.server.authorityHost)/\(tenant)/v2.0/.well-known/openid-configuration", query: nil)
            #expect(reply.status == 200)
            #expect(reply.json["token_endpoint"] as? String == harness.server.tokenEndpoint)
        }
    }

    @Test("a client that does not trust the test CA cannot connect; one that does can")
    func tlsTrust() async throws {
        try await Harness.with { harness in
            // AsyncHTTPClient retries failed connection attempts until the connect timeout; keep it short.
            func client(_ tls: TLSConfiguration) -> HTTPClient {
                var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
                configuration.timeout.connect = .seconds(2)
                return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            }
            let untrusting = client(.makeClientConfiguration())
            let refusal = await #expect(throws: (any Error).self) {
                _ = try await harness.send(.GET, "/keys/k/", client: untrusting)
            }
            #expect(String(reflecting: refusal as Any).contains("CERTIFICATE_VERIFY_FAILED"), "\(String(reflecting: refusal as Any))")
            try await untrusting.shutdown()
            let other = try TestCertificateAuthority.make()
            defer { other.remove() }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(other.caCertificatePath)
            let wrongCA = client(tls)
            let wrongRefusal = await #expect(throws: (any Error).self) {
                _ = try await harness.send(.GET, "/keys/k/", client: wrongCA)
            }
            #expect(String(reflecting: wrongRefusal as Any).contains("CERTIFICATE_VERIFY_FAILED"), "\(String(reflecting: wrongRefusal as Any))")
            try await wrongCA.shutdown()
            #expect(try await harness.send(.GET, "/keys/k/").status == 401)
            let localhost = harness.server.vaultURL.replacingOccurrences(of: "127.0.0.1", with: "localhost")
            #expect(try await harness.send(.GET, localhost + "/keys/k/").status == 401)
        }
    }
}
