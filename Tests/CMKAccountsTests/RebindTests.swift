import CMKAccounts
import CMKCore
import CMKEnvelope
import CMKTesting
import Foundation
import Testing

@Suite("Rebind executor")
struct RebindTests {
    @Test("the first rebind creates the keyring; a second one is a no-op")
    func createThenNoOp() async throws {
        let h = try Harness()
        _ = try await h.vault.createKey(h.key, size: .bits2048)
        let account = h.account()
        let v1 = try await h.current()
        let first = try await h.executor.rebind(account, to: v1)
        #expect(first.created && first.changed && first.generation == 1)
        let keyring = try #require(try await account.driver.readKeyring())
        #expect(keyring.deks.count == 1 && keyring.binding == v1.id)
        let again = try await h.executor.rebind(account, to: v1)
        #expect(!again.changed)
        #expect(try await account.driver.readKeyring() == keyring)
    }

    @Test("rotation rewraps every DEK under the new version and mints a fresh DEK for new writes")
    func rotation() async throws {
        let h = try Harness()
        _ = try await h.vault.createKey(h.key, size: .bits2048)
        let account = h.account()
        _ = try await h.executor.rebind(account, to: try await h.current())
        let before = try #require(try await account.driver.readKeyring())
        _ = try await h.plane.put(account, try ObjectName("old"), bytes("written under v1"))
        h.clock.advance(by: .seconds(60))
        let v2 = try await h.vault.rotateKey(h.key)
        let result = try await h.executor.rebind(account, to: v2)
        let after = try #require(try await account.driver.readKeyring())
        #expect(result.changed && result.rewrapped == 1 && result.previousVersions == [before.binding!])
        #expect(after.generation == before.generation + 1)
        #expect(after.deks.count == 2)
        #expect(after.deks.allSatisfy { $0.keyVersion == v2.id })
        #expect(after.activeDEK == result.mintedDEK && after.activeDEK != before.activeDEK)
        #expect(after.dek(before.activeDEK)?.created == before.active?.created)
        // The old object still reads, through the rewrapped DEK, with a cold cache.
        h.cache.purge(account: account.name)
        #expect(try await h.plane.get(account, try ObjectName("old")).plaintext == bytes("written under v1"))
    }

    @Test("a DEK wrapped under a disabled version fails the rebind and changes nothing")
    func disabledOldVersion() async throws {
        let h = try Harness()
        let v1 = try await h.vault.createKey(h.key, size: .bits2048)
        let account = h.account()
        _ = try await h.executor.rebind(account, to: v1)
        let before = try await account.driver.readKeyring()
        let v2 = try await h.vault.rotateKey(h.key)
        _ = try await h.vault.updateVersion(h.key, version: v1.id, KeyVersionUpdate(enabled: false))
        h.cache.purge(account: account.name)
        let error = await #expect(throws: VaultError.self) { try await h.executor.rebind(account, to: v2) }
        #expect(error?.code == .disabled)
        #expect(try await account.driver.readKeyring() == before)
    }

    @Test("a target that may not wrap is refused")
    func targetNotUsable() async throws {
        let h = try Harness()
        let v1 = try await h.vault.createKey(h.key, size: .bits2048)
        let expired = try await h.vault.updateVersion(h.key, version: v1.id, KeyVersionUpdate(expires: .set(h.clock.now())))
        await #expect(throws: VaultError.self) { try await h.executor.rebind(h.account(), to: expired) }
    }

    @Test("concurrent rebinds of one account end with one consistent keyring")
    func concurrent() async throws {
        let h = try Harness()
        _ = try await h.vault.createKey(h.key, size: .bits2048)
        let store = InMemoryStorageDriver.Store()
        let a = h.account("shared", driver: InMemoryStorageDriver(account: "shared", store: store))
        let b = h.account("shared", driver: InMemoryStorageDriver(account: "shared", store: store))
        _ = try await h.executor.rebind(a, to: try await h.current())
        let v2 = try await h.vault.rotateKey(h.key)
        let results = try await withThrowingTaskGroup(of: RebindExecutor.Result.self) { group in
            for account in [a, b, a, b] { group.addTask { try await h.executor.rebind(account, to: v2) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter(\.changed).count == 1)
        let keyring = try #require(try await a.driver.readKeyring())
        #expect(keyring.generation == 2 && keyring.deks.count == 2 && keyring.deks.allSatisfy { $0.keyVersion == v2.id })
    }

    @Test("suspension lives in the keyring, purges the cache at once and is lifted again")
    func suspension() async throws {
        let h = try Harness()
        _ = try await h.vault.createKey(h.key, size: .bits2048)
        let account = h.account()
        _ = try await h.executor.rebind(account, to: try await h.current())
        _ = try await h.plane.put(account, try ObjectName("o"), bytes("hello"))
        let active = try #require(try await account.driver.readKeyring()?.activeDEK)
        #expect(h.cache.get(account: account.name, dek: active) != nil)
        #expect(try await h.executor.suspend(account, reason: .keyPulled))
        #expect(h.cache.get(account: account.name, dek: active) == nil)
        #expect(try await account.driver.readKeyring()?.suspension?.reason == .keyPulled)
        #expect(try await !h.executor.suspend(account, reason: .keyPulled))
        let readError = await #expect(throws: StorageError.self) { _ = try await h.plane.get(account, try ObjectName("o")) }
        #expect(readError?.code == .suspended)
        #expect(readError?.reason.contains("suspended") == true)
        let writeError = await #expect(throws: StorageError.self) { _ = try await h.plane.put(account, try ObjectName("p"), bytes("x")) }
        #expect(writeError?.code == .suspended)
        #expect(try await h.executor.unsuspend(account))
        #expect(try await h.plane.get(account, try ObjectName("o")).plaintext == bytes("hello"))
    }

    @Test("a keyring of another account or another key is refused")
    func foreignKeyring() async throws {
        let h = try Harness()
        _ = try await h.vault.createKey(h.key, size: .bits2048)
        let store = InMemoryStorageDriver.Store()
        let real = h.account("real", driver: InMemoryStorageDriver(account: "real", store: store))
        _ = try await h.executor.rebind(real, to: try await h.current())
        let impostor = h.account("impostor", driver: InMemoryStorageDriver(account: "impostor", store: store))
        let error = await #expect(throws: StorageError.self) { _ = try await h.executor.rebind(impostor, to: try await h.current()) }
        #expect(error?.code == .wrongAccount)
    }
}
