import CMKAccounts
import CMKAudit
import CMKAzureKeyVault
import CMKConfiguration
import CMKCore
import CMKDirectoryStorage
import CMKEnvelope
import CMKLocalVault
import CMKPKCS11
import CMKPostgresStorage
import CMKSQLiteStorage
import CMKSyncer
import Foundation
import Logging

extension Daemon {
    /// Builds the service graph. With `create` settings in the configuration (the embedded
    /// default), missing directories, the master key file, the key and account locations are
    /// created; otherwise their absence is an error naming the path.
    public static func build(configuration: SyncerConfiguration,
                             environment: [String: String] = ProcessInfo.processInfo.environment,
                             clock: any WallClock = SystemWallClock()) async throws -> Daemon {
        try FileManager.default.createDirectory(atPath: configuration.stateDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try SecurityLog.requireProtectedDirectory(configuration.stateDirectory)
        let (base, administration) = try await makeVault(configuration, environment: environment, clock: clock)
        let vault = CountingKeyVault(base)
        // TTLs run on the monotonic clock, never on `clock`: a step of the wall clock must not keep DEKs.
        let cache = DEKCache(configuration: try DEKCache.Configuration(ttl: configuration.cache.ttl, capacity: configuration.cache.capacity))
        let resolver = DEKResolver(vault: vault, cache: cache)
        // Readers (the data plane) share the cache but give up on a throttling vault after cache.read-wait.
        let readers = DEKResolver(vault: vault, cache: cache, throttle: VaultThrottle(maxWait: configuration.cache.readWait))
        let postgres = try configuration.postgres.map { try postgresConfiguration($0, environment: environment, file: configuration.file) }
        // One lease table per database: every postgres account shares its rebinds with the other daemons serving it.
        let leases = postgres.map { PostgresLeases(configuration: $0) }
        // The vault directory's links are resolved once per configuration; each account's
        // location again when its driver opens (``openDriver``).
        let vaultDirectory = configuration.vault.local.map { VaultDirectory($0.directory) }
        let accounts = configuration.accounts.map {
            makeAccount($0, key: configuration.vault.key, vaultDirectory: vaultDirectory, postgres: postgres,
                        leases: $0.driver == .postgres ? leases : nil)
        }
        let sync = configuration.sync
        let settings = SyncPass.Settings(
            key: configuration.vault.key,
            policy: ReconcilePolicy(suspend: sync.suspend == .immediate ? .immediate : .afterCacheTTL, cacheTTL: configuration.cache.ttl),
            concurrency: sync.concurrency,
            retry: RetryPolicy(attempts: sync.retry.attempts, initialDelay: sync.retry.initialDelay, maxDelay: sync.retry.maxDelay),
            backupRetention: sync.backupRetention, expiryWarning: sync.expiryWarning,
            instance: LeaseHolder(name: sync.instanceName ?? defaultInstanceName(), token: SyncPass.newID()),
            leaseTime: configuration.postgres?.leaseTime ?? .seconds(120))
        return Daemon(configuration: configuration, vault: vault, administration: administration, accounts: accounts, cache: cache,
                      resolver: resolver, executor: RebindExecutor(resolver: resolver, clock: clock), dataPlane: DataPlane(resolver: readers),
                      settings: settings, state: StateStore(directory: configuration.stateDirectory),
                      securityLog: SecurityLog(stateDirectory: configuration.stateDirectory, clock: clock), clock: clock)
    }

    static func makeVault(_ configuration: SyncerConfiguration, environment: [String: String], clock: any WallClock) async throws
        -> (any KeyVault, (any KeyVaultAdministration)?) {
        switch configuration.vault.provider {
        case .local:
            guard let local = configuration.vault.local else {
                throw VaultError(.misconfigured, "\(configuration.file): vault.local is required when vault.provider is local")
            }
            let masterKey: MasterKeySource
            switch local.masterKey {
            case .file(let path):
                if local.create, !FileManager.default.fileExists(atPath: path) {
                    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                            withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                    try LocalVault.createMasterKeyFile(at: URL(fileURLWithPath: path))
                }
                masterKey = .file(URL(fileURLWithPath: path))
            case .credential(let name):
                masterKey = .systemdCredential(name: name, credentialsDirectory: environment["CREDENTIALS_DIRECTORY"].map { URL(fileURLWithPath: $0) })
            }
            if local.create {
                try refuseToRecreateVault(local.directory, stateDirectory: configuration.stateDirectory)
                try FileManager.default.createDirectory(atPath: local.directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            }
            let vault = try LocalVault(configuration: LocalVaultConfiguration(
                directory: URL(fileURLWithPath: local.directory), masterKey: masterKey, retentionDays: local.retentionDays,
                purgeProtection: local.purgeProtection, clock: clock))
            if local.create {
                // Only a key the vault never held: a purged or vanished one stays missing (critical)
                // until an operator runs `cmkctl keys create --replace-purged`.
                _ = try await vault.createKeyIfNeverHeld(configuration.vault.key, size: RSAKeySize(rawValue: local.keySize) ?? .bits2048)
            }
            return (vault, vault)
        case .azure:
            guard let azure = configuration.vault.azure else {
                throw VaultError(.misconfigured, "\(configuration.file): vault.azure is required when vault.provider is azure")
            }
            let settings = try azureConfiguration(azure, key: configuration.vault.key, environment: environment, file: configuration.file)
            let transport: AsyncHTTPClientTransport
            do {
                transport = try AsyncHTTPClientTransport.shared(caFile: settings.caFile, timeout: settings.timeout)
            } catch {
                throw VaultError(.misconfigured, "\(configuration.file): vault.azure.ca-file: \(error)")
            }
            // Keys of the azure provider are managed in Azure: no administration for cmkctl.
            return (try AzureKeyVault(configuration: settings, transport: transport, logger: Logger(label: "cmk.vault.azure")), nil)
        case .pkcs11:
            guard let pkcs11 = configuration.vault.pkcs11 else {
                throw VaultError(.misconfigured, "\(configuration.file): vault.pkcs11 is required when vault.provider is pkcs11")
            }
            // The module is loaded and the PIN read now; the token is reached at the first call,
            // so a token that is absent at start is an outage the passes report (nothing suspended).
            let pin: PINSource
            switch pkcs11.pin {
            case .file(let path): pin = .file(path)
            case .credential(let name): pin = .credential(name: name, directory: environment["CREDENTIALS_DIRECTORY"])
            }
            let vault = try PKCS11KeyVault(configuration: PKCS11VaultConfiguration(
                modulePath: pkcs11.module, tokenLabel: pkcs11.tokenLabel, pin: pin, retentionDays: pkcs11.retentionDays,
                purgeProtection: pkcs11.purgeProtection, sessions: pkcs11.sessions, wrapAlgorithm: pkcs11.wrapAlgorithm, clock: clock), logger: Logger(label: "cmk.vault.pkcs11"))
            return (vault, vault)
        }
    }

    /// `create: true` makes a vault only on a host that never had one. A vault directory without
    /// `vault.json` while the last report (`status.json`) shows accounts bound to key versions means
    /// the vault was deleted or lost: a new one would hold a new key that none of those keyrings
    /// can use, so the daemon stops and says to restore the vault instead.
    static func refuseToRecreateVault(_ directory: String, stateDirectory: String) throws {
        guard !FileManager.default.fileExists(atPath: directory + "/vault.json"),
              let report = try? StateStore(directory: stateDirectory).readReport(),
              let bound = report.accounts.first(where: { $0.binding != nil }) else { return }
        throw VaultError(.misconfigured, "the local vault \(directory) is missing (no vault.json), but account '\(bound.name)' and others were bound to versions of key '\(report.key)' in the last pass (\(stateDirectory)/status.json): restore the vault directory from a backup; create: true never replaces a vault this host had")
    }

    /// The provider's configuration from `vault.azure`; the client secret's path is resolved
    /// here (a systemd credential needs `$CREDENTIALS_DIRECTORY`).
    static func azureConfiguration(_ azure: SyncerConfiguration.Vault.AzureSettings, key: KeyReference,
                                   environment: [String: String], file: String) throws -> AzureKeyVaultConfiguration {
        let credential: AzureCredentialSource
        switch azure.credential {
        case .clientSecretCredential, .clientSecretFile:
            let path = try azure.clientSecretPath(environment: environment, file: file) ?? ""
            credential = .clientSecret(tenantID: azure.tenantID ?? "", clientID: azure.clientID ?? "", secretFile: path)
        case .clientCertificate(let certificateFile, let keyFile):
            credential = .clientCertificate(tenantID: azure.tenantID ?? "", clientID: azure.clientID ?? "",
                                            certificateFile: certificateFile, keyFile: keyFile)
        case .managedIdentity(let clientID):
            credential = .managedIdentity(clientID: clientID)
        }
        guard let vaultURL = URL(string: azure.vaultURL), let authority = URL(string: azure.authorityHost),
              let imds = URL(string: azure.imdsEndpoint) else {
            throw VaultError(.misconfigured, "\(file): vault.azure has a URL that does not parse")
        }
        return AzureKeyVaultConfiguration(
            vaultURL: vaultURL, credential: credential, apiVersion: azure.apiVersion, authorityHost: authority, imdsEndpoint: imds,
            resource: azure.resource, caFile: azure.caFile, timeout: azure.timeout,
            rateLimit: .init(operations: azure.rateLimitOperations, period: azure.rateLimitPeriod),
            retry: RequestRetryPolicy(maxAttempts: azure.retries + 1, baseDelay: .milliseconds(500), maxDelay: .seconds(4),
                                                maximumRetryAfter: .seconds(10)),
            keyName: key.name)
    }

    /// The account with a driver that opens on first use: a location that cannot be opened (corrupt
    /// database, unsafe permissions, missing with `create: false`) fails that account alone, on each
    /// operation, with the error naming it, and opens once repaired (SPEC §5).
    static func makeAccount(_ settings: SyncerConfiguration.AccountSettings, key: KeyReference, vaultDirectory: VaultDirectory?,
                            postgres: PostgresStorageConfiguration? = nil, leases: (any RebindLeases)? = nil) -> Account {
        let driver = DeferredStorageDriver(account: settings.name) { try openDriver(settings, vaultDirectory: vaultDirectory, postgres: postgres) }
        return Account(name: settings.name, kind: settings.kind, driver: driver, key: key, leases: leases)
    }

    /// `sync.instance-name`'s default: the host name, plus `@<instance>` when the daemon runs in a
    /// templated unit (`cmk-syncer@<instance>.service`, read from /proc/self/cgroup).
    public static func defaultInstanceName(cgroup: String? = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
                                    host: String = ProcessInfo.processInfo.hostName) -> String {
        let unit = (cgroup ?? "").split { $0 == "/" || $0 == "\n" }.last { $0.hasSuffix(".service") && $0.contains("@") }
        guard let unit, let at = unit.firstIndex(of: "@") else { return host }
        let instance = unit[unit.index(after: at)...].dropLast(".service".count)
        return instance.isEmpty ? host : "\(host)@\(instance)"
    }

    /// The local vault's directory as configured and with its links resolved (once: it is
    /// compared with every account's location).
    struct VaultDirectory: Sendable {
        let path: String
        let physicalPath: String

        init(_ path: String) {
            self.path = path
            physicalPath = SystemFile.physicalPath(path)
        }
    }

    static func openDriver(_ settings: SyncerConfiguration.AccountSettings, vaultDirectory: VaultDirectory?,
                           postgres: PostgresStorageConfiguration? = nil) throws -> any StorageDriver {
        if settings.driver == .postgres {
            guard let postgres else {
                throw StorageError(.misconfigured, "account '\(settings.name)': driver postgres needs the postgres section of the configuration")
            }
            // One pool per daemon and database: every postgres account shares the process's store.
            return PostgresStorageDriver(store: try PostgresStore.shared(postgres), account: settings.name)
        }
        // Checked again at every open, with the location's links resolved: a link made after the
        // configuration was checked must not send keyrings and objects into the vault.
        if let vaultDirectory,
           SyncerConfiguration.AccountSettings.overlaps(settings.location, vaultDirectory.path, physicalVault: vaultDirectory.physicalPath) {
            throw StorageError(.misconfigured, "account '\(settings.name)': location \(settings.location) resolves into or over the vault directory \(vaultDirectory.path); keep account data outside the vault")
        }
        switch settings.driver {
        case .directory:
            if !settings.create, !FileManager.default.fileExists(atPath: settings.location) {
                throw StorageError(.misconfigured, "account '\(settings.name)': directory \(settings.location) does not exist (create it, or set create: true)")
            }
            return try DirectoryStorageDriver(directory: settings.location, account: settings.name)
        case .sqlite:
            if !settings.create, !FileManager.default.fileExists(atPath: settings.location) {
                throw StorageError(.misconfigured, "account '\(settings.name)': database \(settings.location) does not exist (create it, or set create: true)")
            }
            return try SQLiteStorageDriver(path: settings.location, account: settings.name)
        case .postgres:
            throw StorageError(.misconfigured, "account '\(settings.name)': driver postgres has no location")
        }
    }

    /// The postgres driver's settings from the `postgres` section; the password's file is resolved
    /// here (a systemd credential needs `$CREDENTIALS_DIRECTORY`) and read when the pool opens.
    static func postgresConfiguration(_ settings: SyncerConfiguration.PostgresSettings, environment: [String: String],
                                      file: String) throws -> PostgresStorageConfiguration {
        let endpoint: PostgresStorageConfiguration.Endpoint
        switch settings.endpoint {
        case .host(let host): endpoint = .tcp(host: host, port: settings.port)
        case .socketDirectory(let directory): endpoint = .unixSocket(directory: directory, port: settings.port)
        }
        return PostgresStorageConfiguration(
            endpoint: endpoint, database: settings.database, user: settings.user,
            passwordFile: try settings.passwordPath(environment: environment, file: file),
            tls: PostgresStorageConfiguration.TLSMode(rawValue: settings.tls.rawValue) ?? .verifyFull, caFile: settings.caFile,
            poolSize: settings.poolSize, statementTimeout: settings.statementTimeout, connectTimeout: settings.connectTimeout)
    }
}
