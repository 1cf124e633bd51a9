import CMKCore
import CMKEnvelope
import Foundation
import Logging
import Synchronization

/// The Azure Key Vault provider (SPEC §10): the keys REST API over HTTPS.
///
/// - snapshot: `GET /keys/{name}/` (latest) plus `GET /keys/{name}/versions` (every page); after a
///   404 only, `GET /deletedkeys/{name}` tells a pulled key from a missing one.
/// - public key: `GET /keys/{name}/{version}` (cached per version: a version's key never changes).
/// - unwrap: `POST /keys/{name}/{version}/unwrapkey` with `RSA-OAEP-256`; wrapping is local.
/// - administration: create, rotate, update, delete, recover, purge through the same API (for tests
///   and tooling; `cmkctl` leaves key management to Azure by policy).
///
/// Every request passes a client-side rate limiter, carries a cached bearer token, answers one
/// 401 challenge, and is retried with backoff for 429, 5xx and timeouts. Errors are ``VaultError``s.
/// See `docs/providers/azure.md`.
public final class AzureKeyVault: KeyVaultAdministration {
    /// Provider `azure`: local wrapping with the exported public key, unwrap in the vault, RSA-OAEP-256.
    public let capabilities: VaultCapabilities
    /// The configuration the provider was made with.
    public let configuration: AzureKeyVaultConfiguration

    let transport: any AzureHTTPTransport
    let runtime: AzureRuntime
    let limiter: RateLimiter
    let tokens: TokenCache
    let logger: Logger
    /// The resource the last challenge named (initially the configured one).
    let resource: Mutex<String>
    /// Public keys by version id (immutable in Key Vault).
    let publicKeys = Mutex<[String: PublicKeyMaterial]>([:])
    /// Requests sent, by operation name (for tests of the request budget).
    let counters = Mutex<[String: Int]>([:])

    /// Creates the provider over `transport` (normally an ``AsyncHTTPClientTransport``).
    /// Throws `.misconfigured` for invalid configuration values.
    public init(configuration: AzureKeyVaultConfiguration, transport: any AzureHTTPTransport,
                runtime: AzureRuntime = .system, logger: Logger = Logger(label: "cmk.vault.azure")) throws(VaultError) {
        try configuration.validate()
        self.configuration = configuration
        self.transport = transport
        self.runtime = runtime
        self.logger = logger
        limiter = RateLimiter(operations: configuration.rateLimit.operations, period: configuration.rateLimit.period, runtime: runtime)
        let fetcher = TokenFetcher(source: configuration.credential, authorityHost: configuration.authorityHost,
                                   imdsEndpoint: configuration.imdsEndpoint, transport: transport, runtime: runtime)
        tokens = TokenCache(now: runtime.monotonicNow) { resource, tenant throws(VaultError) in
            try await fetcher.fetch(resource: resource, challengeTenant: tenant)
        }
        resource = Mutex(configuration.resource)
        let vaultName = configuration.vaultURL.host?.split(separator: ".").first.map(String.init) ?? "<vault>"
        capabilities = VaultCapabilities(
            provider: "azure", exportsPublicKey: true, wrapsInVault: false, algorithms: [.rsaOAEP256], managesKeys: false,
            managementHint: "keys of the azure provider are managed in Azure, e.g. `az keyvault key rotate --vault-name \(vaultName) --name \(configuration.keyName ?? "<key>")` (and `az keyvault key delete|recover|set-attributes`)")
    }

    /// Opens the production transport, runs `body`, and shuts the transport down.
    public static func withVault<R: Sendable>(configuration: AzureKeyVaultConfiguration, logger: Logger = Logger(label: "cmk.vault.azure"),
                                              _ body: (AzureKeyVault) async throws -> R) async throws -> R {
        try await AsyncHTTPClientTransport.withTransport(caFile: configuration.caFile, timeout: configuration.timeout) { transport in
            try await body(try AzureKeyVault(configuration: configuration, transport: transport, logger: logger))
        }
    }

    /// Requests sent so far, by operation (`get-key`, `list-versions`, `get-deleted-key`, `unwrap`, ...).
    public var requestCounts: [String: Int] { counters.withLock { $0 } }

    /// How many tokens were fetched so far.
    public var tokenFetches: Int { get async { await tokens.fetches } }

    // MARK: Paths

    /// Percent-encodes one path segment (key names are `A-Z a-z 0-9 -`; versions are hex).
    static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-"))) ?? text
    }

    /// Version ids are what Key Vault issues: 1–64 characters of `A-Z a-z 0-9`.
    static func checkVersion(_ version: String, key: KeyReference) throws(VaultError) {
        guard (1...64).contains(version.utf8.count), version.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) }) else {
            throw VaultError(.invalidInput, "version '\(version)' of key '\(key)' is not a Key Vault version id (1-64 letters and digits)")
        }
    }
}
