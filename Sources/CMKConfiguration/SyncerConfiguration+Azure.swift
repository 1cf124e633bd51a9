import CMKCore

extension SyncerConfiguration.Vault {
    /// `vault.azure`: the settings of the Azure Key Vault provider (docs/providers/azure.md).
    /// No key holds a secret; the credential keys only say where the secret is.
    public struct AzureSettings: Sendable, Hashable {
        /// How the provider authenticates: exactly one of the four.
        public enum Credential: Sendable, Hashable {
            /// `vault.azure.client-secret-credential` (credential name): the client secret is the
            /// systemd credential of that name (`LoadCredentialEncrypted=`), read from `$CREDENTIALS_DIRECTORY`.
            case clientSecretCredential(String)
            /// `vault.azure.client-secret-file` (path): a file holding the client secret, mode 0600.
            case clientSecretFile(String)
            /// `vault.azure.client-certificate-file` + `vault.azure.client-certificate-key-file`
            /// (paths): a PEM certificate registered on the app and its PEM RSA private key (0600).
            case clientCertificate(certificateFile: String, keyFile: String)
            /// `vault.azure.managed-identity: true`, optionally `vault.azure.managed-identity-client-id`
            /// for a user-assigned identity: tokens from the instance metadata service.
            case managedIdentity(clientID: String?)
        }

        /// The api-versions the provider is known to speak.
        public static let knownAPIVersions = ["7.4", "7.5", "7.6", "2025-07-01"]

        /// `vault.azure.vault-url` (https URL, required, not secret): `https://<vault-name>.vault.azure.net`.
        public var vaultURL: String
        /// `vault.azure.api-version` (default `2025-07-01`, not secret).
        public var apiVersion: String
        /// `vault.azure.tenant-id` (GUID or domain; required for client credentials, not secret).
        public var tenantID: String?
        /// `vault.azure.client-id` (GUID; required for client credentials, not secret).
        public var clientID: String?
        /// Where the identity comes from.
        public var credential: Credential
        /// `vault.azure.authority-host` (https URL, default `https://login.microsoftonline.com`, not secret).
        public var authorityHost: String
        /// `vault.azure.imds-endpoint` (URL, default `http://169.254.169.254`, not secret).
        public var imdsEndpoint: String
        /// `vault.azure.resource` (URL, default `https://vault.azure.net`, not secret): the token resource.
        public var resource: String
        /// `vault.azure.ca-file` (path, default none, not secret): an extra PEM trust root.
        public var caFile: String?
        /// `vault.azure.timeout` (duration 1s–5m, default `30s`, not secret): one HTTP request.
        public var timeout: Duration
        /// `vault.azure.rate-limit.operations` (1–4000, default 1500, not secret).
        public var rateLimitOperations: Int
        /// `vault.azure.rate-limit.period` (duration 1s–1m, default `10s`, not secret).
        public var rateLimitPeriod: Duration
        /// `vault.azure.retries` (0–10, default 2, not secret): retries of one request after 429, 5xx or a timeout.
        public var retries: Int
        /// `vault.azure.usage-report` (bool, default false, not secret): after every pass, post the
        /// host's version usage (counts only) to `POST /v1.0/usageReports` of the vault — a route only
        /// cmk-vault has: leave it off on Azure Key Vault (docs/vault-service.md, "Version usage from the hosts").
        public var usageReport = false

        public init(vaultURL: String, apiVersion: String = "2025-07-01", tenantID: String? = nil, clientID: String? = nil,
                    credential: Credential, authorityHost: String = "https://login.microsoftonline.com",
                    imdsEndpoint: String = "http://169.254.169.254", resource: String = "https://vault.azure.net",
                    caFile: String? = nil, timeout: Duration = .seconds(30), rateLimitOperations: Int = 1500,
                    rateLimitPeriod: Duration = .seconds(10), retries: Int = 2) {
            self.vaultURL = vaultURL
            self.apiVersion = apiVersion
            self.tenantID = tenantID
            self.clientID = clientID
            self.credential = credential
            self.authorityHost = authorityHost
            self.imdsEndpoint = imdsEndpoint
            self.resource = resource
            self.caFile = caFile
            self.timeout = timeout
            self.rateLimitOperations = rateLimitOperations
            self.rateLimitPeriod = rateLimitPeriod
            self.retries = retries
        }

        /// The client secret's file: the file itself, or the credential's file in
        /// `$CREDENTIALS_DIRECTORY`; nil for certificate and managed identity credentials.
        public func clientSecretPath(environment: [String: String], file: String = SyncerConfiguration.defaultPath) throws(ConfigurationError) -> String? {
            switch credential {
            case .clientSecretFile(let path):
                return path
            case .clientSecretCredential(let name):
                return try SyncerConfiguration.Vault.credentialPath(
                    name, environment: environment, keyPath: "vault.azure.client-secret-credential", file: file,
                    missing: "the client secret is the systemd credential \(Excerpt.quoted(name)) but $CREDENTIALS_DIRECTORY is not set: add LoadCredentialEncrypted=\(Excerpt.text(name)):/etc/credstore.encrypted/\(Excerpt.text(name)) (or LoadCredential=) to the unit, or use client-secret-file")
            case .clientCertificate, .managedIdentity:
                return nil
            }
        }
    }
}
