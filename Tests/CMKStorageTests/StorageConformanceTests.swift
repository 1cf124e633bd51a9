import CMKCore
import CMKDirectoryStorage
import CMKSQLiteStorage
import CMKTesting
import Foundation
import Synchronization
import Testing

@Suite("Storage driver conformance")
struct StorageConformanceTests {
    @Test("in-memory driver passes the conformance suite")
    func inMemory() async throws {
        let stores = Mutex<[String: InMemoryStorageDriver.Store]>([:])
        let suite = StorageDriverConformance(
            makeDriver: { account in
                let store = InMemoryStorageDriver.Store()
                stores.withLock { $0[account] = store }
                return InMemoryStorageDriver(account: account, store: store)
            },
            openSecondInstance: { account in
                InMemoryStorageDriver(account: account, store: stores.withLock { $0[account]! })
            })
        let checks = try await suite.run()
        print("in-memory driver: \(checks.count) conformance checks passed")
        #expect(checks == StorageDriverConformance.checkNames)
    }

    @Test("directory driver passes the conformance suite")
    func directory() async throws {
        let root = try TemporaryDirectory()
        let base = root.path
        let suite = StorageDriverConformance(
            makeDriver: { account in try DirectoryStorageDriver(directory: base + "/" + account, account: account) },
            openSecondInstance: { account in try DirectoryStorageDriver(directory: base + "/" + account, account: account) })
        let checks = try await suite.run()
        print("directory driver: \(checks.count) conformance checks passed")
        #expect(checks == StorageDriverConformance.checkNames)
    }

    @Test("SQLite driver passes the conformance suite")
    func sqlite() async throws {
        let root = try TemporaryDirectory()
        let base = root.path
        let suite = StorageDriverConformance(
            makeDriver: { account in try SQLiteStorageDriver(path: base + "/" + account + ".sqlite", account: account) },
            openSecondInstance: { account in try SQLiteStorageDriver(path: base + "/" + account + ".sqlite", account: account) })
        let checks = try await suite.run()
        print("SQLite driver: \(checks.count) conformance checks passed")
        #expect(checks == StorageDriverConformance.checkNames)
    }

    @Test("the suite catches a driver that breaks the contract")
    func catchesViolations() async throws {
        let suite = StorageDriverConformance(makeDriver: { account in ForgetfulDriver(account: account) })
        await #expect(throws: StorageConformanceFailure.self) { try await suite.run() }
    }
}

/// Ignores compare-and-swap: stores every keyring unconditionally.
private final class ForgetfulDriver: StorageDriver {
    let account: String
    let inner: InMemoryStorageDriver
    init(account: String) {
        self.account = account
        inner = InMemoryStorageDriver(account: account)
    }
    func readKeyring() async throws -> Keyring? { try await inner.readKeyring() }
    func replaceKeyring(_ keyring: Keyring, expectedGeneration: UInt64?) async throws {
        let current = try await inner.readKeyring()?.generation
        try await inner.replaceKeyring(keyring, expectedGeneration: current.map { _ in keyring.generation - 1 })
    }
    func makeObjectWriter(_ name: ObjectName) async throws -> any ObjectWriter { try await inner.makeObjectWriter(name) }
    func openObject(_ name: ObjectName) async throws -> any ObjectReader { try await inner.openObject(name) }
    func listObjects() async throws -> [ObjectName] { try await inner.listObjects() }
    func deleteObject(_ name: ObjectName, ifRevision revision: ObjectRevision?) async throws { try await inner.deleteObject(name, ifRevision: revision) }
}
