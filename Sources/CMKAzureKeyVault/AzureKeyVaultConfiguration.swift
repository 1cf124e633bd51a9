import CMKCore
import Foundation

/// Everything ``AzureKeyVault`` needs to reach one vault. Every endpoint is configurable, so tests
/// can point the provider at a loopback server with a test CA.
public struct AzureKeyVaultConfiguration: Sendable {
    /// The api-versions this provider is known to speak (any other `X.Y` or `YYYY-MM-DD` is
    /// passed through, so a newer service version can be tried without a new build).
    public static let knownAPIVersions = ["7.4", "7.5", "7.6", "2025-07-01"]
    /// The default api-version: the newest stable one the official SDKs use.
    public static let defaultAPIVersion = "2025-07-01"
    /// The Microsoft identity platform's public-cloud authority.
    public static let defaultAuthorityHost = URL(string: "https://login.microsoftonline.com")!
    /// The Azure instance metadata service (managed identity).
    public static let defaultIMDSEndpoint = URL(string: "http://169.254.169.254")!
    /// The resource Key Vault tokens are issued for (scope `<resource>/.default`).
    public static let defaultResource = "https://vault.azure.net"

    /// The vault, e.g. `https://contoso.vault.azure.net` (https only).
    public var vaultURL: URL
    /// `api-version` query parameter of every vault request.
    public var apiVersion: String
    /// How the provider authenticates.
    public var credential: AzureCredentialSource
    /// The token authority: tokens come from `{authorityHost}/{tenant}/oauth2/v2.0/token`.
    public var authorityHost: URL
    /// The managed identity endpoint (IMDS).
    public var imdsEndpoint: URL
    /// The token resource; a 401 challenge may name another resource only if its host is a
    /// domain suffix of the vault's host.
    public var resource: String
    /// An extra trust root (PEM) besides the system's.
    public var caFile: String?
    /// Timeout of one HTTP request.
    public var timeout: Duration
    /// Client-side rate limit.
    public var rateLimit: RateLimit
    /// Provider-level retries of one request.
    public var retry: RequestRetryPolicy
    /// The root key's name, used only to spell the `az keyvault` hint in operator messages.
    public var keyName: String?
    /// The key type ``AzureKeyVault/createKey(_:size:)`` creates (administration only).
    public var keyType: KeyType

    /// Key Vault's RSA key types: software-protected or HSM-protected (Premium vaults).
    public enum KeyType: String, Sendable, Hashable, CaseIterable {
        case rsa = "RSA"
        case rsaHSM = "RSA-HSM"
    }

    /// A token bucket: at most `operations` requests per `period`, with bursts up to `operations`.
    public struct RateLimit: Sendable, Hashable {
        public var operations: Int
        public var period: Duration

        /// 1,500 operations per 10 s: below the documented 2,000 HSM-key operations per 10 s per vault.
        public static let `default` = RateLimit(operations: 1500, period: .seconds(10))

        public init(operations: Int, period: Duration) {
            self.operations = operations
            self.period = period
        }
    }

    public init(vaultURL: URL, credential: AzureCredentialSource, apiVersion: String = Self.defaultAPIVersion,
                authorityHost: URL = Self.defaultAuthorityHost, imdsEndpoint: URL = Self.defaultIMDSEndpoint,
                resource: String = Self.defaultResource, caFile: String? = nil, timeout: Duration = .seconds(30),
                rateLimit: RateLimit = .default, retry: RequestRetryPolicy = .default, keyType: KeyType = .rsa, keyName: String? = nil) {
        self.vaultURL = vaultURL
        self.credential = credential
        self.apiVersion = apiVersion
        self.authorityHost = authorityHost
        self.imdsEndpoint = imdsEndpoint
        self.resource = resource
        self.caFile = caFile
        self.timeout = timeout
        self.rateLimit = rateLimit
        self.retry = retry
        self.keyType = keyType
        self.keyName = keyName
    }

    /// Checks the values a caller could get wrong; throws `.misconfigured` naming the value.
    public func validate() throws(VaultError) {
        guard vaultURL.scheme?.lowercased() == "https", let host = vaultURL.host, !host.isEmpty else {
            throw VaultError(.misconfigured, "vault URL '\(vaultURL.absoluteString)' must be https://<vault-name>.vault.azure.net")
        }
        guard Self.isAPIVersion(apiVersion) else {
            throw VaultError(.misconfigured, "api-version '\(apiVersion)' is not of the form 7.6 or 2025-07-01 (known: \(Self.knownAPIVersions.joined(separator: ", ")))")
        }
        guard authorityHost.scheme?.lowercased() == "https" else {
            throw VaultError(.misconfigured, "authority host '\(authorityHost.absoluteString)' must be an https URL")
        }
        guard rateLimit.operations > 0, rateLimit.period > .zero else {
            throw VaultError(.misconfigured, "rate limit must allow at least one operation in a positive period")
        }
        guard timeout > .zero else { throw VaultError(.misconfigured, "timeout must be positive") }
        try credential.validate()
    }

    /// `X.Y` or `YYYY-MM-DD` (optionally with a `-preview` suffix).
    public static func isAPIVersion(_ text: String) -> Bool {
        text.range(of: #"^([0-9]+\.[0-9]+|[0-9]{4}-[0-9]{2}-[0-9]{2})(-preview)?$"#, options: .regularExpression) != nil
    }
}

/// Where the provider's identity comes from. The configuration names files, never secrets.
public enum AzureCredentialSource: Sendable, Hashable {
    /// OAuth2 client credentials with a client secret read from `secretFile` (a 0600/0400 file,
    /// typically `$CREDENTIALS_DIRECTORY/<name>`) each time a token is fetched.
    case clientSecret(tenantID: String, clientID: String, secretFile: String)
    /// OAuth2 client credentials with a certificate: a JWT client assertion (RS256, `x5t#S256`)
    /// signed with the private key in `keyFile` (PEM, 0600/0400) for the certificate in `certificateFile` (PEM).
    case clientCertificate(tenantID: String, clientID: String, certificateFile: String, keyFile: String)
    /// The host's managed identity through IMDS; `clientID` picks a user-assigned identity.
    case managedIdentity(clientID: String?)

    /// The tenant, for client credentials.
    public var tenantID: String? {
        switch self {
        case .clientSecret(let tenant, _, _), .clientCertificate(let tenant, _, _, _): return tenant
        case .managedIdentity: return nil
        }
    }

    func validate() throws(VaultError) {
        switch self {
        case .clientSecret(let tenant, let client, _), .clientCertificate(let tenant, let client, _, _):
            guard Self.isTenant(tenant) else {
                throw VaultError(.misconfigured, "tenant id '\(tenant)' is not a GUID or a domain name")
            }
            guard !client.isEmpty, client.utf8.count <= 128 else { throw VaultError(.misconfigured, "client id must not be empty") }
        case .managedIdentity:
            break
        }
        // Fail at start-up, not at the first token fetch: the files must exist, be private and parse.
        switch self {
        case .clientSecret(_, _, let secretFile):
            _ = try SecretFile.readSecret(secretFile, what: "client secret")
        case .clientCertificate(_, _, let certificateFile, let keyFile):
            _ = try ClientAssertion.make(clientID: "check", audience: "check", certificateFile: certificateFile, keyFile: keyFile, now: Date())
        case .managedIdentity:
            break
        }
    }

    /// A tenant GUID or a verified domain (`contoso.onmicrosoft.com`); never a path.
    static func isTenant(_ text: String) -> Bool {
        text.range(of: #"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$"#, options: .regularExpression) != nil
    }
}
