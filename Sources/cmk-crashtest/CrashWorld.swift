import CMKAccounts
import CMKCore
import CMKDirectoryStorage
import CMKEnvelope
import CMKLocalVault
import CMKPostgresStorage
import CMKSQLiteStorage
import Foundation

/// One crash-test account on disk under `<root>`: `master.key`, the local vault in `vault/`, and
/// the account in `data/` (directory driver) or `account.sqlite` (SQLite driver).
struct CrashWorld {
    static let accountName = "crash-acct"
    static let segmentSize = 1024
    /// Twelve objects; every fourth spans several segments.
    static let objectNames: [ObjectName] = (0..<12).map { try! ObjectName(String(format: "obj-%02d", $0)) }

    let vault: LocalVault
    let account: Account
    let executor: RebindExecutor
    let plane: DataPlane

    static func keyReference() throws -> KeyReference { try KeyReference("crash-rsa2048") }

    static func openVault(root: String) throws -> LocalVault {
        let rootURL = URL(fileURLWithPath: root)
        return try LocalVault(configuration: LocalVaultConfiguration(
            directory: rootURL.appending(path: "vault"), masterKey: .file(rootURL.appending(path: "master.key"))))
    }

    init(root: String, driver: String) throws {
        vault = try Self.openVault(root: root)
        let storage: any StorageDriver
        switch driver {
        case "directory": storage = try DirectoryStorageDriver(directory: root + "/data", account: Self.accountName)
        case "sqlite": storage = try SQLiteStorageDriver(path: root + "/account.sqlite", account: Self.accountName)
        case "postgres": storage = PostgresStorageDriver(store: try PostgresStore(try Self.postgres(root: root)), account: Self.accountName)
        default: throw StorageError(.misconfigured, "unknown driver '\(driver)'; use directory, sqlite or postgres")
        }
        account = Account(name: Self.accountName, kind: .file, driver: storage, key: try Self.keyReference())
        let clock = SystemWallClock()
        let resolver = DEKResolver(vault: vault, cache: DEKCache(configuration: try .init()))
        executor = RebindExecutor(resolver: resolver, clock: clock)
        var plane = DataPlane(resolver: resolver)
        plane.segmentSize = Self.segmentSize
        self.plane = plane
    }

    /// The postgres world's server from `$CMK_CRASHTEST_POSTGRES` (`socket-directory|port|user|password-file`)
    /// and its database from `<root>/postgres.database`, which the harness writes (a copied world
    /// gets its own database, made from the original's as a template).
    static func postgres(root: String) throws -> PostgresStorageConfiguration {
        let parts = (ProcessInfo.processInfo.environment["CMK_CRASHTEST_POSTGRES"] ?? "").split(separator: "|").map(String.init)
        guard parts.count == 4, let port = Int(parts[1]),
              let database = try? String(contentsOfFile: root + "/postgres.database", encoding: .utf8) else {
            throw StorageError(.misconfigured, "the postgres driver needs CMK_CRASHTEST_POSTGRES=socket-directory|port|user|password-file and <root>/postgres.database")
        }
        return PostgresStorageConfiguration(endpoint: .unixSocket(directory: parts[0], port: port),
                                            database: database.trimmingCharacters(in: .whitespacesAndNewlines), user: parts[2],
                                            passwordFile: parts[3], poolSize: 2)
    }

    /// Creates everything from nothing: master key, vault, key, first keyring, the objects.
    static func setUp(root: String, driver: String) async throws -> CrashWorld {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try LocalVault.createMasterKeyFile(at: URL(fileURLWithPath: root).appending(path: "master.key"))
        let world = try CrashWorld(root: root, driver: driver)
        let first = try await world.vault.createKey(try keyReference(), size: .bits2048)
        _ = try await world.executor.rebind(world.account, to: first)
        for name in objectNames {
            _ = try await world.plane.put(world.account, name, content(of: name))
        }
        return world
    }

    func currentVersion() async throws -> KeyVersion {
        guard case .present(let state) = try await vault.snapshot(of: account.key), let current = state.current else {
            throw VaultError(.notFound, "key '\(account.key)' has no current version")
        }
        return current
    }

    /// The expected content of an object, derived from its name alone (FNV-1a seed, xorshift).
    static func content(of name: ObjectName) -> [UInt8] {
        var state: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.value.utf8 { state = (state ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let index = Int(name.value.suffix(2)) ?? 0
        let size = index % 4 == 0 ? 3 * segmentSize + 123 : 150 + index * 37
        return (0..<size).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }
}
