import CMKAccounts
import CMKCore
import CMKTesting
import Foundation
import Glibc
import Testing

/// Issue 24, defect 1: a read of an object under an older DEK must not fail because its lazy
/// re-encryption cannot be written (full or read-only disk).
@Suite("Lazy re-encryption on a disk that refuses writes")
struct LazyReencryptionFailureTests {
    /// Where the failing writer gives up.
    enum Stage: String, CaseIterable, Sendable { case create, write, commit }

    /// An in-memory driver whose object writers fail with ENOSPC at `stage`; reads and keyrings work.
    struct FullDiskDriver: StorageDriver {
        let base: InMemoryStorageDriver
        let stage: Stage
        var account: String { base.account }

        static func enospc(_ operation: String) -> StorageError {
            StorageError(SystemFileError(operation, "/state/accounts/a/objects/.tmp-test", code: ENOSPC))
        }

        struct Writer: ObjectWriter {
            let base: any ObjectWriter
            let stage: Stage
            func write(_ bytes: Data) async throws {
                if stage == .write { throw FullDiskDriver.enospc("write") }
                try await base.write(bytes)
            }
            func commit(_ condition: WriteCondition) async throws -> ObjectRevision {
                if stage == .commit { throw FullDiskDriver.enospc("fsync") }
                return try await base.commit(condition)
            }
            func abort() async { await base.abort() }
        }

        func readKeyring() async throws -> Keyring? { try await base.readKeyring() }
        func replaceKeyring(_ keyring: Keyring, expectedGeneration: UInt64?) async throws {
            try await base.replaceKeyring(keyring, expectedGeneration: expectedGeneration)
        }
        func makeObjectWriter(_ name: ObjectName) async throws -> any ObjectWriter {
            if stage == .create { throw Self.enospc("open") }
            return Writer(base: try await base.makeObjectWriter(name), stage: stage)
        }
        func openObject(_ name: ObjectName) async throws -> any ObjectReader { try await base.openObject(name) }
        func listObjects() async throws -> [ObjectName] { try await base.listObjects() }
        func deleteObject(_ name: ObjectName, ifRevision revision: ObjectRevision?) async throws {
            try await base.deleteObject(name, ifRevision: revision)
        }
    }

    /// An account with `objects` stored under its first DEK, rebound to a new version after, read
    /// through a driver whose writers fail at `stage`.
    func rotatedAccount(_ h: Harness, stage: Stage, objects: [String: [UInt8]]) async throws -> Account {
        let store = InMemoryStorageDriver.Store()
        let healthy = h.account("a", driver: InMemoryStorageDriver(account: "a", store: store))
        _ = try await h.vault.createKey(h.key, size: .bits2048)
        _ = try await h.executor.rebind(healthy, to: try await h.current())
        for (name, data) in objects { _ = try await h.plane.put(healthy, try ObjectName(name), data) }
        _ = try await h.executor.rebind(healthy, to: try await h.vault.rotateKey(h.key))
        return h.account("a", driver: FullDiskDriver(base: InMemoryStorageDriver(account: "a", store: store), stage: stage))
    }

    @Test("the read is served in full and says why the rewrite was abandoned", arguments: Stage.allCases)
    func readServed(stage: Stage) async throws {
        let h = try Harness()
        let data = randomBytes(5000)  // several 1 KiB segments: the writer is written before commit
        let account = try await rotatedAccount(h, stage: stage, objects: ["ledger": data])
        let name = try ObjectName("ledger")
        let oldDEK = try await h.plane.dekOf(account, name)

        let (plaintext, outcome) = try await h.plane.get(account, name)
        #expect(plaintext == data)
        #expect(!outcome.reencrypted && outcome.dek == oldDEK && outcome.bytes == data.count)
        let failure = try #require(outcome.reencryptionFailure)
        #expect(failure.contains("No space left on device") && failure.contains("'ledger'") && failure.contains("account 'a'"))
        // Nothing changed: the object is still under its older DEK and reads again.
        #expect(try await h.plane.dekOf(account, name) == oldDEK)
        #expect(try await h.plane.get(account, name, reencrypt: false).plaintext == data)
    }

    @Test("a sweep on a full disk lists the objects it could not rewrite as failed, not as current")
    func sweepCountsFailures() async throws {
        let h = try Harness()
        let account = try await rotatedAccount(h, stage: .write, objects: ["one": randomBytes(3000), "two": randomBytes(10)])
        let result = try await h.plane.sweep(account)
        #expect(result.examined == 2 && result.reencrypted == 0 && result.alreadyCurrent == 0)
        #expect(Set(result.failed.keys) == ["one", "two"])
        #expect(result.failed.values.allSatisfy { $0.contains("No space left on device") })
    }

    @Test("a read without an older DEK reports no failure")
    func noFailureWhenCurrent() async throws {
        let h = try Harness()
        let account = try await rotatedAccount(h, stage: .create, objects: [:])
        let healthy = h.account("a", driver: try #require(account.driver as? FullDiskDriver).base)
        _ = try await h.plane.put(healthy, try ObjectName("fresh"), bytes("new"))
        let outcome = try await h.plane.get(account, try ObjectName("fresh")).outcome
        #expect(!outcome.reencrypted && outcome.reencryptionFailure == nil)
    }
}
