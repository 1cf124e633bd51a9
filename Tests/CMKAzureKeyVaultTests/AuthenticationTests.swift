@testable import CMKAzureKeyVault
import CMKCore
import Crypto
import CryptoExtras
import Foundation
import Synchronization
import Testing

/// Tokens: the token endpoint and IMDS requests, caching, renewal, shared refresh, client
/// assertions, challenge parsing, and that no secret reaches a description or an error.
@Suite("Azure authentication")
struct AuthenticationTests {
    let key = try! KeyReference("data-at-rest-rsa2048")

    static func okAnswers(_ transport: ScriptedTransport, _ count: Int) {
        for _ in 0..<count { transport.enqueue("unwrap", .json(200, #"{"kid":"k","value":"AA"}"#)) }
    }

    @Test("client credentials: one token for many requests, renewed five minutes before expiry")
    func tokenCachingAndRenewal() async throws {
        let transport = ScriptedTransport(tokenLifetime: 3600), clock = ManualRuntime()
        Self.okAnswers(transport, 4)
        let vault = try Fixtures.vault(transport, runtime: clock)
        for _ in 0..<2 { _ = try await vault.unwrap(Data([1]), key: key, version: "01", algorithm: .rsaOAEP256) }
        #expect(transport.tokenRequests.count == 1)
        clock.advance(.seconds(3600 - 301))
        _ = try await vault.unwrap(Data([1]), key: key, version: "01", algorithm: .rsaOAEP256)
        #expect(transport.tokenRequests.count == 1, "still more than five minutes left")
        clock.advance(.seconds(2))
        _ = try await vault.unwrap(Data([1]), key: key, version: "01", algorithm: .rsaOAEP256)
        #expect(transport.tokenRequests.count == 2, "renewed inside the last five minutes")
        #expect(transport.requests.last?.header("Authorization") == "Bearer token-2")

        let request = try #require(transport.tokenRequests.first)
        #expect(request.method == "POST" && request.url.absoluteString == "https://login.microsoftonline.com/\(Fixtures.tenant)/oauth2/v2.0/token")
        #expect(request.header("Content-Type") == "application/x-www-form-urlencoded")
        let form = Dictionary(uniqueKeysWithValues: String(decoding: request.body ?? Data(), as: UTF8.self).split(separator: "&").map {
            let pair = $0.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? "" }
            return (pair[0], pair.count > 1 ? pair[1] : "")
        })
        #expect(form == ["client_id": "00000000-0000-0000-0000-0000000000c1", "scope": "https://vault.azure.net/.default",
                         "grant_type": "client_credentials", "client_secret": "s3cr3t-client-value"])
    }

    @Test("concurrent requests share one token fetch; a failed fetch is not cached")
    func sharedRefresh() async throws {
        let fetches = Mutex(0)
        let cache = TokenCache(now: { .zero }) { _, _ throws(VaultError) in
            let number = fetches.withLock { $0 += 1; return $0 }
            try? await Task.sleep(for: .milliseconds(50))
            if number == 2 { throw VaultError(.unavailable, "token endpoint down") }
            return AccessToken(token: RedactedSecret("t\(number)"), expiresAt: .seconds(3600))
        }
        let tokens = try await withThrowingTaskGroup(of: AccessToken.self) { group in
            for _ in 0..<20 { group.addTask { try await cache.token(resource: "https://vault.azure.net") } }
            return try await group.reduce(into: [AccessToken]()) { $0.append($1) }
        }
        #expect(Set(tokens.map { $0.token.reveal() }) == ["t1"])
        #expect(fetches.withLock { $0 } == 1)
        let first = tokens[0]
        await #expect(throws: VaultError.self) { _ = try await cache.token(resource: "https://vault.azure.net", rejected: first) }
        let again = try await cache.token(resource: "https://vault.azure.net")
        #expect(again.token.reveal() == "t3", "after a failure the next call fetches again")
    }

    @Test("token endpoint refusals are unauthorized and never echo the secret")
    func tokenEndpointErrors() async throws {
        let fetcher = TokenFetcher(source: .clientSecret(tenantID: Fixtures.tenant, clientID: "c", secretFile: try Fixtures.secretFile()),
                                   authorityHost: AzureKeyVaultConfiguration.defaultAuthorityHost, imdsEndpoint: AzureKeyVaultConfiguration.defaultIMDSEndpoint,
                                   transport: ScriptedTransport(), runtime: ManualRuntime().runtime)
        let refused = fetcher.tokenError(.json(401, #"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. s3cr3t-client-value"}"#))
        #expect(refused.code == .unauthorized)
        #expect(refused.reason.contains("invalid_client") && refused.reason.contains("AADSTS7000215"))
        #expect(!"\(refused)".contains("s3cr3t"), "the error body is not copied into the error")
        #expect(fetcher.tokenError(.json(503, "{}")).code == .unavailable)
        #expect(fetcher.tokenError(.json(429, "{}", headers: [("Retry-After", "7")])).retryAfter == .seconds(7))
        #expect(throws: VaultError.self) { try fetcher.decode(.json(200, #"{"access_token":"x"}"#), issuedAt: .zero) }
        #expect(throws: VaultError.self) { try TokenFetcher.checkTenant(configured: Fixtures.tenant, challenge: "11111111-2222-3333-4444-555555555555") }
    }

    @Test("secrets print redacted everywhere; requests describe only method and path")
    func redaction() throws {
        let secret = RedactedSecret("hunter2-secret")
        let token = AccessToken(token: secret, expiresAt: .seconds(1))
        for text in ["\(secret)", String(reflecting: secret), "\(token)", String(reflecting: token), "\(Mirror(reflecting: secret).children.count)"] {
            #expect(!text.contains("hunter2"))
        }
        let request = AzureHTTPRequest(method: "GET", url: URL(string: "https://v.vault.azure.net/keys/k/")!, headers: [("Authorization", "Bearer hunter2")])
        #expect("\(request)" == "GET /keys/k/")
    }

    @Test("a client secret file readable by others is refused, naming the mode")
    func secretFilePermissions() throws {
        let path = try Fixtures.secretFile()
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        let error = #expect(throws: VaultError.self) { _ = try SecretFile.readSecret(path, what: "client secret") }
        #expect(error?.code == .misconfigured && error?.reason.contains("mode 0644") == true)
        #expect(throws: VaultError.self) { _ = try SecretFile.readSecret(path + ".missing", what: "client secret") }
        try FileManager.default.setAttributes([.posixPermissions: 0o400], ofItemAtPath: path)
        #expect(try SecretFile.readSecret(path, what: "client secret").reveal() == "s3cr3t-client-value")
    }

    @Test("a missing or public secret file fails when the provider is made, not at the first pass")
    func credentialFilesAreCheckedAtStart() throws {
        let path = try Fixtures.secretFile()
        var configuration = Fixtures.configuration(secretFile: path + ".missing")
        let missing = #expect(throws: VaultError.self) { _ = try AzureKeyVault(configuration: configuration, transport: ScriptedTransport()) }
        #expect(missing?.code == .misconfigured && missing?.reason.contains(".missing") == true)
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: path)
        configuration = Fixtures.configuration(secretFile: path)
        let open = #expect(throws: VaultError.self) { _ = try AzureKeyVault(configuration: configuration, transport: ScriptedTransport()) }
        #expect(open?.reason.contains("mode 0640") == true)
        configuration.credential = .clientCertificate(tenantID: Fixtures.tenant, clientID: "c", certificateFile: path, keyFile: path)
        #expect(throws: VaultError.self) { _ = try AzureKeyVault(configuration: configuration, transport: ScriptedTransport()) }
    }

    @Test("managed identity asks IMDS with Metadata: true and reads expires_in as a string")
    func managedIdentity() async throws {
        let transport = IMDSTransport()
        let configuration = AzureKeyVaultConfiguration(vaultURL: URL(string: "https://v.vault.azure.net")!,
                                                       credential: .managedIdentity(clientID: "mi-client"),
                                                       imdsEndpoint: URL(string: "http://127.0.0.1:40342")!)
        let vault = try AzureKeyVault(configuration: configuration, transport: transport, runtime: ManualRuntime().runtime)
        _ = try await vault.unwrap(Data([1]), key: key, version: "01", algorithm: .rsaOAEP256)
        let request = try #require(transport.seen.withLock { $0.first })
        #expect(request.method == "GET" && request.header("Metadata") == "true")
        #expect(request.url.absoluteString == "http://127.0.0.1:40342/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net&client_id=mi-client")
        #expect(transport.seen.withLock { $0.last?.header("Authorization") } == "Bearer imds-token")
    }

    @Test("certificate credential: an RS256 client assertion with x5t#S256 that verifies against the certificate")
    func clientAssertion() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("akv-cert-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem",
                             "-subj", "/CN=cmk-syncer-test", "-days", "1"]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        try #require(openssl.terminationStatus == 0, "openssl (installed by scripts/install-deps.sh) could not make a test certificate")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: directory + "/key.pem")

        let audience = "https://login.microsoftonline.com/\(Fixtures.tenant)/oauth2/v2.0/token"
        let jwt = try ClientAssertion.make(clientID: "app", audience: audience, certificateFile: directory + "/cert.pem",
                                           keyFile: directory + "/key.pem", now: Date(timeIntervalSince1970: 1_780_000_000), jwtID: "jti-1").reveal()
        let parts = jwt.split(separator: ".").map(String.init)
        try #require(parts.count == 3)
        let header = try JSONSerialization.jsonObject(with: try #require(decodeBase64URL(parts[0]))) as? [String: String]
        let der = try ClientAssertion.certificate(directory + "/cert.pem")
        #expect(header == ["alg": "RS256", "typ": "JWT", "x5t#S256": Base64URL.encode(Data(SHA256.hash(data: der)))])
        let claims = try JSONSerialization.jsonObject(with: try #require(decodeBase64URL(parts[1]))) as? [String: Any] ?? [:]
        #expect(claims["aud"] as? String == audience && claims["iss"] as? String == "app" && claims["sub"] as? String == "app")
        #expect(claims["exp"] as? Int == 1_780_000_600 && claims["nbf"] as? Int == 1_780_000_000 && claims["jti"] as? String == "jti-1")

        let keyPEM = try String(contentsOfFile: directory + "/key.pem", encoding: .utf8)
        let publicKey = try _RSA.Signing.PrivateKey(pemRepresentation: keyPEM).publicKey
        let signature = _RSA.Signing.RSASignature(rawRepresentation: try #require(decodeBase64URL(parts[2])))
        #expect(publicKey.isValidSignature(signature, for: Data((parts[0] + "." + parts[1]).utf8), padding: .insecurePKCS1v1_5))
        try? FileManager.default.removeItem(atPath: directory)
    }

    @Test("challenge headers parse in their several spellings")
    func challengeParsing() {
        let modern = AuthenticationChallenge(header: #"Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#)
        #expect(modern?.tenantID == "72f988bf-86f1-41af-91ab-2d7cd011db47" && modern?.resource == "https://vault.azure.net")
        let legacy = AuthenticationChallenge(header: #"Bearer authorization_uri="https://login.windows.net/contoso.onmicrosoft.com", scope="https://vault.azure.net/.default""#)
        #expect(legacy?.tenantID == "contoso.onmicrosoft.com" && legacy?.resource == "https://vault.azure.net")
        #expect(AuthenticationChallenge(header: #"Basic realm="x""#) == nil)
        #expect(AuthenticationChallenge(header: "Bearer") == nil)
        #expect(AuthenticationChallenge.accepts(resource: "https://vault.azure.net", configured: "https://vault.azure.net", vaultHost: "127.0.0.1"))
        #expect(AuthenticationChallenge.accepts(resource: "https://vault.azure.cn", configured: "https://vault.azure.net", vaultHost: "v.vault.azure.cn"))
        #expect(!AuthenticationChallenge.accepts(resource: "https://management.azure.com", configured: "https://vault.azure.net", vaultHost: "v.vault.azure.net"))
        #expect(!AuthenticationChallenge.accepts(resource: "https://azure.net.evil.com", configured: "https://vault.azure.net", vaultHost: "v.vault.azure.net"))
    }
}

/// Answers IMDS with a string `expires_in` (as IMDS does) and the vault with 200.
final class IMDSTransport: AzureHTTPTransport {
    let seen = Mutex<[AzureHTTPRequest]>([])
    func send(_ request: AzureHTTPRequest) async throws -> AzureHTTPResponse {
        seen.withLock { $0.append(request) }
        if request.url.path == "/metadata/identity/oauth2/token" {
            return .json(200, #"{"access_token":"imds-token","expires_in":"86399","expires_on":"1780086399","resource":"https://vault.azure.net","token_type":"Bearer"}"#)
        }
        return .json(200, #"{"kid":"k","value":"AA"}"#)
    }
}
