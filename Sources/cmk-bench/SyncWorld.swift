import CMKAccounts
import CMKCore
import CMKDirectoryStorage
import CMKEnvelope
import CMKLocalVault
import CMKSQLiteStorage
import CMKSyncer
import CMKTesting
import Foundation

/// N accounts of one driver bound to a local vault in a scratch directory.
struct SyncWorld {
    enum Driver: String, CaseIterable, Codable, Sendable {
        case memory, directory, sqlite
    }

    let root: String
    let vault: LocalVault
    let key: KeyReference
    let accounts: [Account]

    /// Opens (creating on first use) the vault and the accounts under `root`.
    init(root: String, driver: Driver, count: Int) throws {
        self.root = root
        try FileManager.default.createDirectory(atPath: root + "/accounts", withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let masterKey = URL(fileURLWithPath: root + "/master.key")
        if !FileManager.default.fileExists(atPath: masterKey.path) { try LocalVault.createMasterKeyFile(at: masterKey) }
        vault = try LocalVault(configuration: LocalVaultConfiguration(directory: URL(fileURLWithPath: root + "/vault"), masterKey: .file(masterKey)))
        key = try KeyReference("bench-rsa2048")
        let key = key
        accounts = try (0..<count).map { index in
            let name = String(format: "acct-%05d", index)
            let storage: any StorageDriver
            switch driver {
            case .memory: storage = InMemoryStorageDriver(account: name)
            case .directory: storage = try DirectoryStorageDriver(directory: "\(root)/accounts/\(name)", account: name)
            // Opened on first use, as the daemon opens every account (`Daemon.makeAccount`): the
            // first pass after the start opens each database, checks its schema and reads its keyring.
            case .sqlite: storage = DeferredStorageDriver(account: name) { try SQLiteStorageDriver(path: "\(root)/accounts/\(name).sqlite", account: name) }
            }
            return Account(name: name, kind: StorageKind.allCases[index % StorageKind.allCases.count], driver: storage, key: key)
        }
    }

    /// Creates the key if missing and runs one pass, so every account has a keyring bound to the current version.
    func bindAll() async throws {
        if case .missing = try await vault.snapshot(of: key) { _ = try await vault.createKey(key, size: .bits2048) }
        let (report, _) = await pass(through: vault, concurrency: 16).run(previous: nil)
        let unbound = report.accounts.filter { $0.outcome.code == .failed }
        guard unbound.isEmpty else {
            throw OpenSSLAnchor.Failure(description: "setup pass failed for \(unbound.count) accounts, first: \(unbound[0].outcome)")
        }
    }

    /// A pass over every account through `vault`, as the daemon builds it (fresh DEK cache).
    /// - Parameter throttleAttempts: tries per vault call under throttling (1: no retry, the behaviour before `VaultThrottle`).
    func pass(through vault: any KeyVault, concurrency: Int, throttleAttempts: Int = 8) -> SyncPass {
        let counting = CountingKeyVault(vault)
        let resolver = DEKResolver(vault: counting, cache: DEKCache(configuration: try! .init()),
                                   throttle: VaultThrottle(attempts: throttleAttempts))
        let clock = SystemWallClock()
        return SyncPass(settings: .init(key: key, concurrency: concurrency), accounts: accounts, vault: counting,
                        executor: RebindExecutor(resolver: resolver, clock: clock), clock: clock)
    }
}
