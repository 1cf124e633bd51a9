import CMKAzureTestServer
import Foundation

/// The `vault:` section of a host's `cmk-syncer.yaml` for the Azure provider with a client secret
/// in a 0600 file, as the tests and the benchmark write it for a `cmk-syncer` on the Azure test
/// server or on `cmk-vault` (docs/configuration.md, `vault.azure`). One place for the keys, so a
/// test and the benchmark cannot configure the same host two ways.
public struct AzureProviderSection: Sendable {
    public var key: String
    public var vaultURL: String
    public var authorityHost: String
    /// `vault.azure.resource`: set for cmk-vault (its public URL), nil for the test server (Azure's default).
    public var resource: String?
    public var tenantID: String
    public var clientID: String
    public var clientSecretFile: String
    public var caFile: String
    /// Further `name: value` lines under `vault.azure` (`timeout: 2s`, `rate-limit: {...}`).
    public var extra: [String]

    public init(key: String, vaultURL: String, authorityHost: String, resource: String?, tenantID: String, clientID: String,
                clientSecretFile: String, caFile: String, extra: [String] = []) {
        self.key = key
        self.vaultURL = vaultURL
        self.authorityHost = authorityHost
        self.resource = resource
        self.tenantID = tenantID
        self.clientID = clientID
        self.clientSecretFile = clientSecretFile
        self.caFile = caFile
        self.extra = extra
    }

    /// A host on the Azure test server, signing in with the server's client id and secret.
    public init(testServer server: AzureKeyVaultTestServer, ca: TestCertificateAuthority, key: String, clientSecretFile: String, extra: [String] = []) {
        self.init(key: key, vaultURL: server.vaultURL, authorityHost: server.authorityHost, resource: nil, tenantID: server.configuration.tenantID,
                  clientID: server.configuration.clientID, clientSecretFile: clientSecretFile, caFile: ca.caCertificatePath, extra: extra)
    }

    /// A host on cmk-vault at `url` (its token endpoint, keys API and resource all at that URL),
    /// signing in with a platform identity.
    public init(vaultService url: String, tenantID: String, clientID: String, caFile: String, key: String, clientSecretFile: String, extra: [String] = []) {
        self.init(key: key, vaultURL: url, authorityHost: url, resource: url, tenantID: tenantID, clientID: clientID,
                  clientSecretFile: clientSecretFile, caFile: caFile, extra: extra)
    }

    /// The section, its first line `vault:` and the others indented from column 0: it goes on a
    /// line of its own in a configuration's multi-line string literal.
    public var yaml: String {
        var lines = ["vault:", "  provider: azure", "  key: \(key)", "  azure:", "    vault-url: \(vaultURL)", "    authority-host: \(authorityHost)"]
        if let resource { lines.append("    resource: \(resource)") }
        lines += ["    tenant-id: \(tenantID)", "    client-id: \(clientID)", "    client-secret-file: \(clientSecretFile)", "    ca-file: \(caFile)"]
        lines += extra.map { "    " + $0 }
        return lines.joined(separator: "\n")
    }

    /// Writes `secret` to ``clientSecretFile``, readable by its owner only (the provider refuses a wider file).
    public func writeSecret(_ secret: String) throws {
        guard FileManager.default.createFile(atPath: clientSecretFile, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw TestHTTPSClient.Failure(description: "cannot write the client secret to \(clientSecretFile)")
        }
    }
}
