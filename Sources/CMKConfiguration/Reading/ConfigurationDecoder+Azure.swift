import CMKCore
import Foundation
import Yams

extension ConfigurationDecoder {
    static let azureKeys = [
        "vault-url", "api-version", "tenant-id", "client-id", "client-secret-credential", "client-secret-file",
        "client-certificate-file", "client-certificate-key-file", "managed-identity", "managed-identity-client-id",
        "authority-host", "imds-endpoint", "resource", "ca-file", "timeout", "rate-limit", "retries", "usage-report",
    ]
    static let rateLimitKeys = ["operations", "period"]

    func decodeAzure(_ node: Node) throws(ConfigurationError) -> SyncerConfiguration.Vault.AzureSettings {
        let section = try reader.mapping(node, at: "vault.azure", keys: Self.azureKeys,
                                         secretHint: "put the client secret in a systemd credential (client-secret-credential) or a 0600 file (client-secret-file) and name that instead")
        let base = PathSyntax.directory(of: file)
        func url(_ key: String, schemes: [String], example: String) throws(ConfigurationError) -> String? {
            guard let n = section[key] else { return nil }
            let text = try reader.string(n, at: "vault.azure.\(key)", expected: "a URL (accepted: \(example))")
            guard let parsed = URLComponents(string: text), let scheme = parsed.scheme?.lowercased(), schemes.contains(scheme),
                  let host = parsed.host, !host.isEmpty, parsed.query == nil, parsed.fragment == nil, parsed.user == nil else {
                throw reader.error(.invalidValue, "vault.azure.\(key)", "\(Excerpt.quoted(text)) is not an \(schemes.joined(separator: " or ")) URL (accepted: \(example))", at: n)
            }
            return text.hasSuffix("/") ? String(text.dropLast()) : text
        }
        func path(_ key: String) throws(ConfigurationError) -> String? {
            guard let n = section[key] else { return nil }
            return try reader.path(n, at: "vault.azure.\(key)", base: base)
        }

        guard let vaultURL = try url("vault-url", schemes: ["https"], example: "https://<vault-name>.vault.azure.net") else {
            throw reader.error(.missingKey, "vault.azure.vault-url", "is required: the vault's URL, https://<vault-name>.vault.azure.net", at: nil)
        }
        if let n = section["vault-url"], let path = URLComponents(string: vaultURL)?.path, !path.isEmpty, path != "/" {
            throw reader.error(.invalidValue, "vault.azure.vault-url", "\(Excerpt.quoted(vaultURL)) has a path; give only the vault's origin (accepted: https://<vault-name>.vault.azure.net)", at: n)
        }
        var apiVersion = "2025-07-01"
        if let n = section["api-version"] {
            apiVersion = try reader.string(n, at: "vault.azure.api-version", expected: "an api-version")
            guard apiVersion.range(of: #"^([0-9]+\.[0-9]+|[0-9]{4}-[0-9]{2}-[0-9]{2})(-preview)?$"#, options: .regularExpression) != nil else {
                throw reader.error(.invalidValue, "vault.azure.api-version", "\(Excerpt.quoted(apiVersion)) is not an api-version (accepted: \(SyncerConfiguration.Vault.AzureSettings.knownAPIVersions.joined(separator: ", ")), or another X.Y or YYYY-MM-DD version)", at: n)
            }
        }
        var tenantID: String?
        if let n = section["tenant-id"] {
            let text = try reader.string(n, at: "vault.azure.tenant-id", expected: "a tenant id")
            guard Self.isGUID(text) || text.range(of: #"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"#, options: .regularExpression) != nil else {
                throw reader.error(.invalidValue, "vault.azure.tenant-id", "\(Excerpt.quoted(text)) is not a tenant id (accepted: a directory (tenant) GUID or a domain such as contoso.onmicrosoft.com)", at: n)
            }
            tenantID = text
        }
        func guid(_ key: String) throws(ConfigurationError) -> String? {
            guard let n = section[key] else { return nil }
            let text = try reader.string(n, at: "vault.azure.\(key)", expected: "an application (client) id")
            guard Self.isGUID(text) else {
                throw reader.error(.invalidValue, "vault.azure.\(key)", "\(Excerpt.quoted(text)) is not a client id (accepted: an application (client) GUID such as 00000000-0000-0000-0000-000000000000)", at: n)
            }
            return text
        }
        let clientID = try guid("client-id")
        let managedClientID = try guid("managed-identity-client-id")
        let managed = try section["managed-identity"].map { (n) throws(ConfigurationError) in try reader.bool(n, at: "vault.azure.managed-identity") } ?? false

        let sources = ["client-secret-credential", "client-secret-file", "client-certificate-file", "managed-identity"].filter {
            $0 == "managed-identity" ? managed : section[$0] != nil
        }
        let accepted = "exactly one of client-secret-credential (a systemd credential name), client-secret-file (a 0600 file), client-certificate-file with client-certificate-key-file, or managed-identity: true"
        guard sources.count == 1 else {
            if sources.isEmpty { throw reader.error(.missingKey, "vault.azure", "needs a credential: \(accepted)", at: node) }
            throw reader.error(.invalidValue, "vault.azure.\(sources[1])", "\(sources.joined(separator: " and ")) are both set: keep \(accepted)", at: section[sources[1]])
        }
        if section["client-certificate-key-file"] != nil, sources[0] != "client-certificate-file" {
            throw reader.error(.invalidValue, "vault.azure.client-certificate-key-file", "is only used with client-certificate-file", at: section["client-certificate-key-file"])
        }
        if managedClientID != nil, !managed {
            throw reader.error(.invalidValue, "vault.azure.managed-identity-client-id", "is only used with managed-identity: true", at: section["managed-identity-client-id"])
        }
        let credential: SyncerConfiguration.Vault.AzureSettings.Credential
        switch sources[0] {
        case "client-secret-credential":
            let n = section["client-secret-credential"]!
            let name = try reader.string(n, at: "vault.azure.client-secret-credential", expected: "a systemd credential name")
            guard Self.isValidCredentialName(name) else {
                throw reader.error(.invalidValue, "vault.azure.client-secret-credential",
                                   "\(Excerpt.quoted(name)) is not a systemd credential name (accepted: a plain file name of 1-255 bytes, no '/', not '.' or '..')", at: n)
            }
            credential = .clientSecretCredential(name)
        case "client-secret-file":
            credential = .clientSecretFile(try path("client-secret-file")!)
        case "client-certificate-file":
            guard let key = try path("client-certificate-key-file") else {
                throw reader.error(.missingKey, "vault.azure.client-certificate-key-file", "is required with client-certificate-file: the certificate's PEM RSA private key (mode 0600)", at: nil)
            }
            credential = .clientCertificate(certificateFile: try path("client-certificate-file")!, keyFile: key)
        default:
            credential = .managedIdentity(clientID: managedClientID)
        }
        if !managed {
            if tenantID == nil { throw reader.error(.missingKey, "vault.azure.tenant-id", "is required with client credentials: the directory (tenant) GUID", at: nil) }
            if clientID == nil { throw reader.error(.missingKey, "vault.azure.client-id", "is required with client credentials: the application (client) GUID", at: nil) }
        }

        var settings = SyncerConfiguration.Vault.AzureSettings(vaultURL: vaultURL, apiVersion: apiVersion, tenantID: tenantID,
                                                               clientID: clientID, credential: credential)
        if let value = try url("authority-host", schemes: ["https"], example: "https://login.microsoftonline.com") { settings.authorityHost = value }
        if let value = try url("imds-endpoint", schemes: ["http", "https"], example: "http://169.254.169.254") { settings.imdsEndpoint = value }
        if let value = try url("resource", schemes: ["https"], example: "https://vault.azure.net") { settings.resource = value }
        settings.caFile = try path("ca-file")
        if let n = section["timeout"] {
            settings.timeout = try reader.duration(n, at: "vault.azure.timeout", range: .seconds(1) ... .seconds(300), accepted: "1s to 5m")
        }
        if let n = section["retries"] { settings.retries = try reader.int(n, at: "vault.azure.retries", range: 0...10) }
        if let n = section["usage-report"] { settings.usageReport = try reader.bool(n, at: "vault.azure.usage-report") }
        let rate = try reader.optionalMapping(section["rate-limit"], at: "vault.azure.rate-limit", keys: Self.rateLimitKeys)
        if let n = rate["operations"] { settings.rateLimitOperations = try reader.int(n, at: "vault.azure.rate-limit.operations", range: 1...4000) }
        if let n = rate["period"] {
            settings.rateLimitPeriod = try reader.duration(n, at: "vault.azure.rate-limit.period", range: .seconds(1) ... .seconds(60), accepted: "1s to 1m")
        }
        return settings
    }

    static func isGUID(_ text: String) -> Bool {
        text.range(of: #"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"#, options: .regularExpression) != nil
    }
}
