import CMKCore
@testable import CMKConfiguration
import Testing

@Suite("vault.azure")
struct AzureVaultTests {
    static let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    static let client = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"

    static func azure(_ lines: String, provider: String = "azure") -> String {
        "vault:\n  provider: \(provider)\n  azure:\n" + lines.split(separator: "\n").map { "    \($0)\n" }.joined()
    }

    static let minimal = "vault-url: https://contoso-cmk.vault.azure.net\ntenant-id: \(tenant)\nclient-id: \(client)\nclient-secret-credential: azure-client-secret"

    @Test func minimalClientSecretCredential() throws {
        let configuration = try Fixture.parse(Fixture.yaml(vault: Self.azure(Self.minimal)))
        #expect(configuration.vault.provider == .azure && configuration.vault.local == nil)
        let azure = try #require(configuration.vault.azure)
        #expect(azure == .init(vaultURL: "https://contoso-cmk.vault.azure.net", tenantID: Self.tenant, clientID: Self.client,
                               credential: .clientSecretCredential("azure-client-secret")))
        #expect(azure.apiVersion == "2025-07-01" && azure.rateLimitOperations == 1500 && azure.rateLimitPeriod == .seconds(10))
        #expect(try azure.clientSecretPath(environment: ["CREDENTIALS_DIRECTORY": "/run/credentials/cmk-syncer.service"])
                == "/run/credentials/cmk-syncer.service/azure-client-secret")
        let error = #expect(throws: ConfigurationError.self) { _ = try azure.clientSecretPath(environment: [:]) }
        #expect(error?.code == .credentialsDirectoryMissing && error?.keyPath == "vault.azure.client-secret-credential")
    }

    @Test func everyAzureSettingIsRead() throws {
        let configuration = try Fixture.parse(Fixture.yaml(vault: Self.azure("""
            vault-url: https://127.0.0.1:8443/
            api-version: '7.6'
            tenant-id: contoso.onmicrosoft.com
            client-id: \(Self.client)
            client-certificate-file: certs/app.pem
            client-certificate-key-file: /etc/cmk-syncer/app.key
            authority-host: https://127.0.0.1:9443
            imds-endpoint: http://127.0.0.1:40342
            resource: https://vault.azure.net
            ca-file: /etc/cmk-syncer/test-ca.pem
            timeout: 5s
            retries: 4
            rate-limit:
              operations: 100
              period: 2s
            """)))
        #expect(configuration.vault.azure == .init(
            vaultURL: "https://127.0.0.1:8443", apiVersion: "7.6", tenantID: "contoso.onmicrosoft.com", clientID: Self.client,
            credential: .clientCertificate(certificateFile: "/etc/cmk-syncer/certs/app.pem", keyFile: "/etc/cmk-syncer/app.key"),
            authorityHost: "https://127.0.0.1:9443", imdsEndpoint: "http://127.0.0.1:40342", resource: "https://vault.azure.net",
            caFile: "/etc/cmk-syncer/test-ca.pem", timeout: .seconds(5), rateLimitOperations: 100, rateLimitPeriod: .seconds(2), retries: 4))
    }

    @Test func managedIdentityNeedsNoTenantOrClient() throws {
        let configuration = try Fixture.parse(Fixture.yaml(vault: Self.azure("vault-url: https://v.vault.azure.net\nmanaged-identity: true\nmanaged-identity-client-id: \(Self.client)")))
        #expect(configuration.vault.azure?.credential == .managedIdentity(clientID: Self.client))
        let secretFile = try Fixture.parse(Fixture.yaml(vault: Self.azure("vault-url: https://v.vault.azure.net\ntenant-id: \(Self.tenant)\nclient-id: \(Self.client)\nclient-secret-file: /etc/cmk-syncer/azure.secret")))
        #expect(secretFile.vault.azure?.credential == .clientSecretFile("/etc/cmk-syncer/azure.secret"))
    }

    static let credentialChoice = "exactly one of client-secret-credential (a systemd credential name), client-secret-file (a 0600 file), client-certificate-file with client-certificate-key-file, or managed-identity: true"

    @Test(arguments: [
        ("vault-url: http://v.vault.azure.net", "vault.azure.vault-url", "'http://v.vault.azure.net' is not an https URL (accepted: https://<vault-name>.vault.azure.net)"),
        ("vault-url: https://v.vault.azure.net/keys", "vault.azure.vault-url", "'https://v.vault.azure.net/keys' has a path; give only the vault's origin (accepted: https://<vault-name>.vault.azure.net)"),
        ("api-version: latest", "vault.azure.api-version", "'latest' is not an api-version (accepted: 7.4, 7.5, 7.6, 2025-07-01, or another X.Y or YYYY-MM-DD version)"),
        ("tenant-id: 'a/b'", "vault.azure.tenant-id", "'a/b' is not a tenant id (accepted: a directory (tenant) GUID or a domain such as contoso.onmicrosoft.com)"),
        ("client-id: my-app", "vault.azure.client-id", "'my-app' is not a client id (accepted: an application (client) GUID such as 00000000-0000-0000-0000-000000000000)"),
        ("timeout: 0s", "vault.azure.timeout", "'0s' is out of range (accepted: 1s to 5m)"),
        ("retries: 11", "vault.azure.retries", "11 is out of range (accepted: 0 to 10)"),
        ("authority-host: login.microsoftonline.com", "vault.azure.authority-host", "'login.microsoftonline.com' is not an https URL (accepted: https://login.microsoftonline.com)"),
        ("imds-endpoint: ftp://x", "vault.azure.imds-endpoint", "'ftp://x' is not an http or https URL (accepted: http://169.254.169.254)"),
    ])
    func badAzureValues(line: String, keyPath: String, reason: String) {
        let key = line.split(separator: ":")[0]
        let base = Self.minimal.split(separator: "\n").filter { !$0.hasPrefix(key + ":") }.joined(separator: "\n")
        Fixture.expectFailure(Fixture.yaml(vault: Self.azure(base + "\n" + line)), at: keyPath, reason)
    }

    @Test func rateLimitIsBounded() {
        Fixture.expectFailure(Fixture.yaml(vault: Self.azure(Self.minimal + "\nrate-limit:\n  operations: 5000")), at: "vault.azure.rate-limit.operations",
                              "5000 is out of range (accepted: 1 to 4000)")
        Fixture.expectFailure(Fixture.yaml(vault: Self.azure(Self.minimal + "\nrate-limit:\n  period: 2m")), at: "vault.azure.rate-limit.period",
                              "'2m' is out of range (accepted: 1s to 1m)")
        Fixture.expectFailure(Fixture.yaml(vault: Self.azure(Self.minimal + "\nrate-limit:\n  burst: 2")), at: "vault.azure.rate-limit.burst",
                              "unknown key (accepted: operations, period)", code: .unknownKey)
    }

    @Test func credentialsNeedExactlyOneSource() {
        Fixture.expectFailure(Fixture.yaml(vault: Self.azure("vault-url: https://v.vault.azure.net\ntenant-id: \(Self.tenant)\nclient-id: \(Self.client)")),
                              at: "vault.azure", "needs a credential: \(Self.credentialChoice)", code: .missingKey)
        Fixture.expectFailure(Fixture.yaml(vault: Self.azure(Self.minimal + "\nmanaged-identity: true")), at: "vault.azure.managed-identity",
                              "client-secret-credential and managed-identity are both set: keep \(Self.credentialChoice)")
        Fixture.expectFailure(Fixture.yaml(vault: Self.azure("vault-url: https://v.vault.azure.net\ntenant-id: \(Self.tenant)\nclient-id: \(Self.client)\nclient-certificate-file: /c.pem")),
                              at: "vault.azure.client-certificate-key-file", "is required with client-certificate-file: the certificate's PEM RSA private key (mode 0600)", code: .missingKey)
        Fixture.expectFailure(Fixture.yaml(vault: Self.azure("vault-url: https://v.vault.azure.net\nclient-id: \(Self.client)\nclient-secret-file: /s")),
                              at: "vault.azure.tenant-id", "is required with client credentials: the directory (tenant) GUID", code: .missingKey)
        Fixture.expectFailure(Fixture.yaml(vault: Self.azure(Self.minimal + "\nmanaged-identity-client-id: \(Self.client)")),
                              at: "vault.azure.managed-identity-client-id", "is only used with managed-identity: true")
        Fixture.expectFailure(Fixture.yaml(vault: Self.azure("vault-url: https://v.vault.azure.net\ntenant-id: \(Self.tenant)\nclient-id: \(Self.client)\nclient-secret-credential: a/b")),
                              at: "vault.azure.client-secret-credential",
                              "'a/b' is not a systemd credential name (accepted: a plain file name of 1-255 bytes, no '/', not '.' or '..')")
    }

    @Test func providerAndSectionMustAgree() {
        Fixture.expectFailure(Fixture.yaml(vault: "vault:\n  provider: azure\n  local:\n    master-key-file: /k\n"), at: "vault.local",
                              "is for vault.provider 'local'; the provider is 'azure' (remove vault.local or change the provider)", code: .unknownKey)
        Fixture.expectFailure(Fixture.yaml(vault: "vault:\n  provider: azure\n"), at: "vault.azure",
                              "is required when vault.provider is 'azure': a mapping with vault-url and a credential (client-secret-credential, client-secret-file, client-certificate-file or managed-identity)",
                              code: .missingKey)
        Fixture.expectFailure(Fixture.yaml(vault: "vault:\n  provider: local\n  local:\n    master-key-file: /k\n  azure:\n    vault-url: https://v.vault.azure.net\n"),
                              at: "vault.azure", "is for vault.provider 'azure'; the provider is 'local' (remove vault.azure or change the provider)", code: .unknownKey)
    }

    @Test(arguments: ["client-secret: hunter2", "password: hunter2", "bearer-token: abc"])
    func inlineSecretsAreRefused(line: String) throws {
        let error = try #require(Fixture.failure(Fixture.yaml(vault: Self.azure(Self.minimal + "\n" + line))))
        #expect(error.code == .inlineSecret || error.code == .unknownKey)
        #expect(!error.description.contains("hunter2") && !error.description.contains("abc'"), "the value is never echoed")
    }

    @Test func unknownAzureKeysGetASuggestion() {
        Fixture.expectFailure(Fixture.yaml(vault: Self.azure(Self.minimal + "\nvault-uri: https://x")), at: "vault.azure.vault-uri",
                              "unknown key, did you mean 'vault-url'? (accepted: \(ConfigurationDecoder.azureKeys.joined(separator: ", ")))", code: .unknownKey)
    }
}
