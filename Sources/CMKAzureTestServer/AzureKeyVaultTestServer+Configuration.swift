import CMKCore
import CMKKeyVaultAPI
import Foundation

extension AzureKeyVaultTestServer {
    /// What the emulated tenant, application, identity and vault look like.
    public struct Configuration: Sendable {
        /// The directory (tenant) id the token endpoint serves; other tenants get AADSTS90002.
        public var tenantID: String
        /// The application (client) id allowed to get tokens.
        public var clientID: String
        /// The client secret for `client_credentials`. Secret: never logged or recorded.
        public var clientSecret: String
        /// The certificate accepted in a signed client assertion (`client_assertion`), if any.
        public var clientCertificate: TestCertificateAuthority.ClientCertificate?
        /// The managed identity IMDS serves tokens for; `nil` starts no IMDS listener.
        public var managedIdentityClientID: String?
        /// How long an issued access token is valid (by `clock`). Azure's default is about an hour.
        public var tokenLifetime: Duration
        /// Soft-delete retention in days, 7–90 as Azure allows (`recoverableDays`).
        public var retentionDays: Int
        /// Purge protection: purge is refused with 403 and `recoveryLevel` loses `+Purgeable`.
        public var purgeProtection: Bool
        /// An optional service-side rate limit (Azure throttles per vault with 429 and `Retry-After`).
        public var rateLimit: RateLimit?
        /// The resource (audience) vault tokens must be for; `https://vault.azure.net` as in Azure public cloud.
        public var vaultResource: String
        /// The authority the 401 challenge names; `nil` names this server's own token endpoint host.
        public var challengeAuthority: String?
        /// The time source for key validity (`nbf`/`exp`), token expiry, timestamps and purge dates.
        public var clock: any WallClock
        /// Where the keys API keeps its keys: nil for memory (lost at shutdown); a `LocalVault`
        /// to run the same API over the local vault's files, as cmk-vault does.
        public var keyStore: (any KeyRecordStore)?

        public init(
            tenantID: String = "72f988bf-86f1-41af-91ab-2d7cd011db47",
            clientID: String = "6c1a0f7e-4a2b-4a9e-9d1c-2f0b5e3c7a11",
            clientSecret: String,
            clientCertificate: TestCertificateAuthority.ClientCertificate? = nil,
            managedIdentityClientID: String? = nil,
            tokenLifetime: Duration = .seconds(3599),
            retentionDays: Int = 90,
            purgeProtection: Bool = true,
            rateLimit: RateLimit? = nil,
            vaultResource: String = "https://vault.azure.net",
            challengeAuthority: String? = nil,
            clock: any WallClock = SystemWallClock(),
            keyStore: (any KeyRecordStore)? = nil
        ) {
            self.tenantID = tenantID
            self.clientID = clientID
            self.clientSecret = clientSecret
            self.clientCertificate = clientCertificate
            self.managedIdentityClientID = managedIdentityClientID
            self.tokenLifetime = tokenLifetime
            self.retentionDays = retentionDays
            self.purgeProtection = purgeProtection
            self.rateLimit = rateLimit
            self.vaultResource = vaultResource
            self.challengeAuthority = challengeAuthority
            self.clock = clock
            self.keyStore = keyStore
        }

        /// Checks the values a real vault would refuse to be configured with.
        func validate() throws {
            guard (7...90).contains(retentionDays) else {
                throw TestServerError("retentionDays is \(retentionDays); Azure accepts 7 to 90 days")
            }
            guard tokenLifetime > .zero else { throw TestServerError("tokenLifetime must be positive") }
            guard !tenantID.isEmpty, !clientID.isEmpty else { throw TestServerError("tenantID and clientID must not be empty") }
            if let rateLimit, rateLimit.operations < 1 || rateLimit.window <= .zero {
                throw TestServerError("rateLimit needs at least 1 operation per positive window")
            }
        }

    }

    /// A per-vault request budget: more than `operations` requests in a `window` (real time) get
    /// 429 `Throttled` with `Retry-After`, as Azure Key Vault's service limits do.
    public struct RateLimit: Sendable {
        public var operations: Int
        public var window: Duration
        public init(operations: Int, window: Duration) {
            self.operations = operations
            self.window = window
        }
    }
}

/// A misuse of the test server (bad configuration, a certificate authority that cannot be made).
public struct TestServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension AzureKeyVaultTestServer.Configuration: CustomStringConvertible, CustomDebugStringConvertible {
    /// Everything but the client secret, which prints as `<redacted>`.
    public var description: String {
        "Configuration(tenantID: \(tenantID), clientID: \(clientID), clientSecret: <redacted>, "
            + "clientCertificate: \(clientCertificate == nil ? "none" : "registered"), managedIdentityClientID: \(managedIdentityClientID ?? "none"), "
            + "tokenLifetime: \(tokenLifetime), retentionDays: \(retentionDays), purgeProtection: \(purgeProtection), "
            + "rateLimit: \(rateLimit.map { "\($0.operations) per \($0.window)" } ?? "none"), vaultResource: \(vaultResource))"
    }

    public var debugDescription: String { description }
}
