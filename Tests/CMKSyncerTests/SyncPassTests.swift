import CMKAccounts
import CMKCore
import CMKEnvelope
import CMKSyncer
import CMKTesting
import Foundation
import Synchronization
import Testing

/// A pass over several in-memory accounts with an in-memory vault behind a fault injector.
final class PassHarness: Sendable {
    let clock = ManualClock()
    let memory: InMemoryKeyVault
    let faults: FaultInjectingKeyVault
    let vault: CountingKeyVault
    let key: KeyReference
    let cache: DEKCache
    let executor: RebindExecutor
    let plane: DataPlane
    let accounts: [Account]
    let delays = Mutex<[Duration]>([])
    let previous = Mutex<SyncReport?>(nil)
    let settings: SyncPass.Settings

    init(accounts names: [String] = ["files-1", "sql-1", "audit-1"], policy: ReconcilePolicy = .init(),
         drivers: [String: any StorageDriver] = [:], expiryWarning: Duration = .seconds(30 * 86_400)) throws {
        memory = InMemoryKeyVault(clock: clock)
        faults = FaultInjectingKeyVault(memory)
        vault = CountingKeyVault(faults)
        key = try KeyReference("data-at-rest-rsa2048")
        cache = DEKCache(configuration: try .init(ttl: policy.cacheTTL), clock: clock)
        let resolver = DEKResolver(vault: vault, cache: cache)
        executor = RebindExecutor(resolver: resolver, clock: clock)
        plane = DataPlane(resolver: resolver)
        accounts = names.map { name in
            Account(name: name, kind: .file, driver: drivers[name] ?? InMemoryStorageDriver(account: name), key: try! KeyReference("data-at-rest-rsa2048"))
        }
        settings = SyncPass.Settings(key: key, policy: policy, concurrency: 2, expiryWarning: expiryWarning)
    }

    /// Runs a pass and remembers its report for the next one, as the daemon does.
    @discardableResult
    func pass() async -> (report: SyncReport, events: [SyncEvent]) {
        let pass = SyncPass(settings: settings, accounts: accounts, vault: vault, executor: executor, clock: clock,
                            sleep: { delay in self.delays.withLock { $0.append(delay) } }, random: { 0.5 })
        let result = await pass.run(previous: previous.withLock { $0 })
        previous.withLock { $0 = result.report }
        return result
    }

    func kinds(_ events: [SyncEvent]) -> [SyncEvent.Kind] { events.map(\.kind) }
    func outcomes(_ report: SyncReport) -> [Outcome.Code] { report.accounts.map(\.outcome.code) }
}

@Suite("Sync pass: every row of SPEC §5")
struct SyncPassTests {
    @Test("first pass creates every keyring with one snapshot; an idle pass changes nothing")
    func firstAndIdle() async throws {
        let h = try PassHarness()
        let v1 = try await h.memory.createKey(h.key, size: .bits2048)
        let (first, events) = await h.pass()
        #expect(first.state == .ok && first.inSyncCount == 3)
        #expect(h.kinds(events).filter { $0 == .accountCreated }.count == 3)
        #expect(first.accounts.allSatisfy { $0.binding == v1.id })
        let before = h.memory.calls
        let (idle, idleEvents) = await h.pass()
        #expect(idle.state == .ok && h.outcomes(idle) == [.inSync, .inSync, .inSync])
        #expect(idleEvents.isEmpty)
        #expect(h.memory.calls.snapshot - before.snapshot == 1 && h.memory.calls.total - before.total == 1)
        #expect(idle.vaultCalls == 1)
    }

    @Test("an idle pass reads each keyring once; a rebinding pass reads it again after writing")
    func keyringReads() async throws {
        let watched = RefusingDriver(account: "watched")
        let h = try PassHarness(accounts: ["watched"], drivers: ["watched": watched])
        _ = try await h.memory.createKey(h.key, size: .bits2048)
        await h.pass()
        watched.reads.withLock { $0 = 0 }
        await h.pass()
        #expect(watched.reads.withLock { $0 } == 1)
        _ = try await h.memory.rotateKey(h.key)
        watched.reads.withLock { $0 = 0 }
        #expect(await h.pass().report.accounts.first?.outcome.code == .rebound)
        // planning, the executor's own read before its conditional write, and the report's read after it
        #expect(watched.reads.withLock { $0 } == 3)
    }

    @Test("rotation: every account rebound, old version reported unreferenced, safe to disable after the backup horizon")
    func rotation() async throws {
        let h = try PassHarness()
        let v1 = try await h.memory.createKey(h.key, size: .bits2048)
        await h.pass()
        h.clock.advance(by: .seconds(60))
        let v2 = try await h.memory.rotateKey(h.key)
        let (report, events) = await h.pass()
        #expect(report.state == .ok && h.outcomes(report) == [.rebound, .rebound, .rebound])
        #expect(report.accounts.allSatisfy { $0.binding == v2.id && $0.versions == [v2.id] && $0.previousBinding == v1.id })
        #expect(h.kinds(events).first == .keyRotated)
        #expect(events.first?.version == v2.id && events.first?.previousVersion == v1.id)
        let old = try #require(report.versions.first { $0.version == v1.id })
        #expect(old.accounts.isEmpty && !old.safeToDisable && old.unreferencedSince == h.clock.now())
        #expect(try #require(report.versions.first { $0.version == v2.id }).accounts == ["audit-1", "files-1", "sql-1"])
        h.clock.advance(by: .seconds(14 * 86_400))
        let (later, laterEvents) = await h.pass()
        #expect(try #require(later.versions.first { $0.version == v1.id }).safeToDisable)
        #expect(h.kinds(laterEvents) == [.versionSafeToDisable])
    }

    @Test("rotation with one broken account: the others rebind, the old version stays referenced by it")
    func rotationWithFailure() async throws {
        let broken = RefusingDriver(account: "broken")
        let h = try PassHarness(accounts: ["a", "broken", "c"], drivers: ["broken": broken])
        let v1 = try await h.memory.createKey(h.key, size: .bits2048)
        await h.pass()
        let v2 = try await h.memory.rotateKey(h.key)
        broken.refuse.withLock { $0 = true }
        let (report, events) = await h.pass()
        #expect(h.outcomes(report) == [.rebound, .failed, .rebound])
        #expect(report.state == .degraded && report.cause?.contains("broken") == true)
        #expect(try #require(report.versions.first { $0.version == v1.id }).accounts == ["broken"])
        #expect(try #require(report.versions.first { $0.version == v2.id }).accounts == ["a", "c"])
        #expect(h.kinds(events).contains(.accountFailed))
    }

    @Test("pull, immediate: every account suspended at once, reads refused, status KEY PULLED")
    func pullImmediate() async throws {
        let h = try PassHarness()
        _ = try await h.memory.createKey(h.key, size: .bits2048)
        await h.pass()
        _ = try await h.plane.put(h.accounts[0], try ObjectName("o"), Array("secret".utf8))
        h.clock.advance(by: .seconds(30))
        let deleted = try await h.memory.deleteKey(h.key)
        let (report, events) = await h.pass()
        #expect(report.state == .keyPulled && report.state.label == "KEY PULLED")
        #expect(h.outcomes(report) == [.suspended, .suspended, .suspended])
        #expect(report.pulledSince == deleted.deletedDate)
        #expect(h.kinds(events) == [.keyPulled, .accountSuspended, .accountSuspended, .accountSuspended])
        let error = await #expect(throws: StorageError.self) { _ = try await h.plane.get(h.accounts[0], try ObjectName("o")) }
        #expect(error?.code == .suspended)
        let (again, againEvents) = await h.pass()
        #expect(again.state == .keyPulled && againEvents.isEmpty)
    }

    @Test("pull, after-cache-ttl: suspension waits for cached DEKs to expire")
    func pullAfterTTL() async throws {
        let h = try PassHarness(policy: ReconcilePolicy(suspend: .afterCacheTTL, cacheTTL: .seconds(600)))
        _ = try await h.memory.createKey(h.key, size: .bits2048)
        await h.pass()
        _ = try await h.memory.deleteKey(h.key)
        let (early, _) = await h.pass()
        #expect(early.state == .keyPulled && early.accounts.allSatisfy { !$0.suspended })
        #expect(early.accounts.allSatisfy { $0.outcome.reason == "key-pulled" })
        h.clock.advance(by: .seconds(600))
        let (late, _) = await h.pass()
        #expect(late.accounts.allSatisfy { $0.suspended })
    }

    @Test("restore: unwrap verified, suspension lifted, outage length reported, reads work again")
    func restore() async throws {
        let h = try PassHarness()
        _ = try await h.memory.createKey(h.key, size: .bits2048)
        await h.pass()
        _ = try await h.plane.put(h.accounts[0], try ObjectName("o"), Array("secret".utf8))
        _ = try await h.memory.deleteKey(h.key)
        await h.pass()
        h.clock.advance(by: .seconds(1800))
        _ = try await h.memory.recoverKey(h.key)
        let unwrapsBefore = h.memory.calls.unwrap
        let (report, events) = await h.pass()
        #expect(report.state == .ok && report.accounts.allSatisfy { !$0.suspended })
        #expect(report.outageSeconds == 1800)
        #expect(h.kinds(events).contains(.keyRestored))
        #expect(h.kinds(events).filter { $0 == .accountResumed }.count == 3)
        #expect(h.memory.calls.unwrap - unwrapsBefore >= 3, "every resumed account verified an unwrap")
        #expect(try await h.plane.get(h.accounts[0], try ObjectName("o")).plaintext == Array("secret".utf8))
        let (after, afterEvents) = await h.pass()
        #expect(after.outageSeconds == nil && afterEvents.isEmpty)
    }

    @Test("restore after a rotation that happened while pulled: resume and rebind")
    func restoreWithRotation() async throws {
        let h = try PassHarness()
        _ = try await h.memory.createKey(h.key, size: .bits2048)
        await h.pass()
        _ = try await h.memory.deleteKey(h.key)
        await h.pass()
        _ = try await h.memory.recoverKey(h.key)
        let v2 = try await h.memory.rotateKey(h.key)
        let (report, _) = await h.pass()
        #expect(report.state == .ok && report.accounts.allSatisfy { $0.binding == v2.id && !$0.suspended })
    }

    @Test("purged key: critical, accounts failed, no local data deleted")
    func purged() async throws {
        let h = try PassHarness()
        _ = try await h.memory.createKey(h.key, size: .bits2048)
        await h.pass()
        _ = try await h.plane.put(h.accounts[0], try ObjectName("o"), Array("kept".utf8))
        let deleted = try await h.memory.deleteKey(h.key)
        await h.pass()
        h.clock.set(deleted.scheduledPurgeDate!.addingTimeInterval(1))
        try await h.memory.purgeKey(h.key)
        let (report, events) = await h.pass()
        #expect(report.state == .critical && report.cause?.contains("missing") == true)
        #expect(h.kinds(events).contains(.keyMissing))
        #expect(report.accounts.allSatisfy { $0.outcome.reason == "key-missing" })
        #expect(try await h.accounts[0].driver.listObjects() == [try ObjectName("o")])
        #expect(try await h.accounts[0].driver.readKeyring() != nil)
    }

    @Test("an old version disabled while still wrapping DEKs: critical, names the accounts, changes nothing")
    func disabledInUse() async throws {
        let h = try PassHarness()
        let v1 = try await h.memory.createKey(h.key, size: .bits2048)
        await h.pass()
        let before = try await h.accounts[0].driver.readKeyring()
        _ = try await h.memory.rotateKey(h.key)
        _ = try await h.memory.updateVersion(h.key, version: v1.id, KeyVersionUpdate(enabled: false))
        let (report, events) = await h.pass()
        #expect(report.state == .critical)
        #expect(report.cause?.contains("audit-1, files-1, sql-1") == true && report.cause?.contains("re-enable") == true)
        #expect(events.filter { $0.kind == .versionDisabledInUse }.map(\.account) == ["audit-1", "files-1", "sql-1"])
        #expect(try await h.accounts[0].driver.readKeyring() == before)
        _ = try await h.memory.updateVersion(h.key, version: v1.id, KeyVersionUpdate(enabled: true))
        #expect(await h.pass().report.state == .ok)
    }

    @Test("current version disabled, expired or not yet valid: keep the last usable binding, warn with the dates", arguments: [0, 1, 2])
    func currentUnusable(mode: Int) async throws {
        let h = try PassHarness()
        let v1 = try await h.memory.createKey(h.key, size: .bits2048)
        await h.pass()
        h.clock.advance(by: .seconds(60))
        let v2 = try await h.memory.rotateKey(h.key)
        let date = h.clock.now().addingTimeInterval(mode == 1 ? -1 : 86_400)
        let update: KeyVersionUpdate = switch mode {
        case 0: KeyVersionUpdate(enabled: false)
        case 1: KeyVersionUpdate(expires: .set(date))
        default: KeyVersionUpdate(notBefore: .set(date))
        }
        _ = try await h.memory.updateVersion(h.key, version: v2.id, update)
        let (report, events) = await h.pass()
        #expect(report.state == .degraded)
        #expect(report.accounts.allSatisfy { $0.binding == v1.id && $0.outcome.code == .inSync })
        #expect(h.kinds(events) == [.currentVersionUnusable])
        if mode > 0 { #expect(report.cause?.contains(date.ISO8601Format()) == true) }
    }

    @Test("a current version expiring within sync.expiry-warning: warned once per version, kept in the report; a rotation clears it")
    func nearExpiry() async throws {
        let h = try PassHarness()
        let v1 = try await h.memory.createKey(h.key, size: .bits2048)
        let expires = h.clock.now().addingTimeInterval(12 * 86_400 + 60)
        _ = try await h.memory.updateVersion(h.key, version: v1.id, KeyVersionUpdate(expires: .set(expires)))
        let (first, events) = await h.pass()
        #expect(first.state == .ok && first.currentExpires == expires)
        #expect(h.kinds(events).filter { $0 == .keyNearExpiry } == [.keyNearExpiry])
        #expect(events.first { $0.kind == .keyNearExpiry }?.fields["expires"] == expires.ISO8601Format())
        // The next pass says it in the status line again, but does not warn again.
        h.clock.advance(by: .seconds(900))
        let (second, again) = await h.pass()
        #expect(second.currentExpires == expires && !h.kinds(again).contains(.keyNearExpiry))
        // A new version without an expiry clears it.
        h.clock.advance(by: .seconds(60))
        _ = try await h.memory.rotateKey(h.key)
        let (rotated, _) = await h.pass()
        #expect(rotated.currentExpires == nil)
    }

    @Test("a current version expiring after sync.expiry-warning, or with the warning off, is not warned about")
    func farFromExpiry() async throws {
        for (days, window) in [(31.0, 30), (5.0, 0)] {
            let h = try PassHarness(expiryWarning: .seconds(window * 86_400))
            let v1 = try await h.memory.createKey(h.key, size: .bits2048)
            _ = try await h.memory.updateVersion(h.key, version: v1.id, KeyVersionUpdate(expires: .set(h.clock.now().addingTimeInterval(days * 86_400))))
            let (report, events) = await h.pass()
            #expect(report.currentExpires == nil && !h.kinds(events).contains(.keyNearExpiry), "\(days) days, window \(window) days")
        }
    }

    @Test("outage (5xx, timeout): exponential backoff with jitter, then success")
    func outageThenSuccess() async throws {
        let h = try PassHarness()
        _ = try await h.memory.createKey(h.key, size: .bits2048)
        h.faults.fail(.snapshot, with: [VaultError(.unavailable, "503"), VaultError(.unavailable, "timeout"), VaultError(.unavailable, "503")])
        let (report, _) = await h.pass()
        #expect(report.state == .ok && report.retries == 3)
        // Equal jitter with a fixed random 0.5: d/2 + d/4 for d = 1, 2, 4 s.
        #expect(h.delays.withLock { $0 } == [.milliseconds(750), .milliseconds(1500), .milliseconds(3000)])
    }

    @Test("a long outage: degraded, never suspended, cache keeps serving")
    func outage() async throws {
        let h = try PassHarness()
        _ = try await h.memory.createKey(h.key, size: .bits2048)
        await h.pass()
        _ = try await h.plane.put(h.accounts[0], try ObjectName("o"), Array("cached".utf8))
        h.faults.failAlways(.snapshot, with: VaultError(.unavailable, "connection refused"))
        h.faults.failAlways(.unwrap, with: VaultError(.unavailable, "connection refused"))
        let (report, events) = await h.pass()
        #expect(report.state == .degraded && report.cause?.contains("unreachable") == true)
        #expect(report.accounts.allSatisfy { !$0.suspended && $0.outcome.reason == "vault.unavailable" })
        #expect(report.retries == 4 && h.kinds(events) == [.vaultUnreachable])
        let nominal = h.delays.withLock { $0 }.map { $0 / 0.75 }
        #expect(nominal == [.seconds(1), .seconds(2), .seconds(4), .seconds(8)])
        #expect(try await h.plane.get(h.accounts[0], try ObjectName("o")).plaintext == Array("cached".utf8))
    }

    @Test("an outage while the key is pulled: the status says the suspended accounts stay suspended, not 'nothing suspended'")
    func outageWhilePulled() async throws {
        let h = try PassHarness()
        _ = try await h.memory.createKey(h.key, size: .bits2048)
        await h.pass()
        _ = try await h.memory.deleteKey(h.key)
        await h.pass()
        h.faults.failAlways(.snapshot, with: VaultError(.unavailable, "connection refused"))
        let (report, _) = await h.pass()
        #expect(report.state == .degraded)
        #expect(report.accounts.allSatisfy { $0.suspended })
        #expect(report.cause?.contains("nothing suspended") == false, "\(report.cause ?? "")")
        #expect(report.cause?.contains("3 suspended account(s) stay suspended") == true, "\(report.cause ?? "")")
        h.faults.failAlways(.snapshot, with: VaultError(.forbidden, "403"))
        let (denied, _) = await h.pass()
        #expect(denied.cause?.contains("3 suspended account(s) stay suspended") == true, "\(denied.cause ?? "")")
    }

    @Test("an account whose keyring vanished after a pass is critical and gets no new keyring; one that never had one does")
    func keyringVanished() async throws {
        let drivers = ["files-1": InMemoryStorageDriver(account: "files-1"), "sql-1": InMemoryStorageDriver(account: "sql-1")]
        let h = try PassHarness(accounts: ["files-1", "sql-1"], drivers: drivers)
        _ = try await h.memory.createKey(h.key, size: .bits2048)
        await h.pass()
        // A fresh driver for files-1 stands for a keyring that vanished; the previous report saw one.
        let lost = Account(name: "files-1", kind: .file, driver: InMemoryStorageDriver(account: "files-1"), key: h.key)
        let pass = SyncPass(settings: h.settings, accounts: [lost, h.accounts[1]], vault: h.vault, executor: h.executor, clock: h.clock,
                            sleep: { _ in }, random: { 0.5 })
        let (report, _) = await pass.run(previous: h.previous.withLock { $0 })
        #expect(report.state == .critical)
        #expect(report.accounts.first { $0.name == "files-1" }?.outcome.reason == "storage.keyring-missing")
        #expect(try await lost.driver.readKeyring() == nil)
        #expect(report.accounts.first { $0.name == "sql-1" }?.outcome.code == .inSync)
        // Without the earlier report and without objects, the account is new: it gets its keyring.
        let (fresh, _) = await pass.run(previous: nil)
        #expect(fresh.accounts.first { $0.name == "files-1" }?.outcome.code == .rebound)
    }

    @Test("backoff is capped at 16 s")
    func cap() {
        let policy = RetryPolicy(attempts: 8)
        #expect((1...7).map { policy.nominalDelay(retry: $0) } == [1, 2, 4, 8, 16, 16, 16].map { Duration.seconds($0) })
        #expect(policy.delay(retry: 3, retryAfter: nil, unit: 0) == .seconds(2))
        #expect(policy.delay(retry: 3, retryAfter: nil, unit: 0.999_999) < .seconds(4))
    }

    @Test("429 with Retry-After is honoured; without it the jittered backoff applies")
    func throttled() async throws {
        let h = try PassHarness()
        _ = try await h.memory.createKey(h.key, size: .bits2048)
        h.faults.fail(.snapshot, with: [VaultError(.throttled, "429", retryAfter: .seconds(7)), VaultError(.throttled, "429")])
        let (report, _) = await h.pass()
        #expect(report.state == .ok && report.retries == 2)
        #expect(h.delays.withLock { $0 } == [.seconds(7), .milliseconds(1500)])
    }

    @Test("401/403: degraded with the cause, no retries, nothing suspended", arguments: [VaultError.Code.unauthorized, .forbidden])
    func accessDenied(code: VaultError.Code) async throws {
        let h = try PassHarness()
        _ = try await h.memory.createKey(h.key, size: .bits2048)
        await h.pass()
        h.faults.failAlways(.snapshot, with: VaultError(code, "AADSTS7000215: invalid client secret"))
        let (report, events) = await h.pass()
        #expect(report.state == .degraded && report.cause?.contains("credentials") == true)
        #expect(report.retries == 0 && h.delays.withLock { $0 }.isEmpty)
        #expect(report.accounts.allSatisfy { !$0.suspended })
        #expect(h.kinds(events) == [.credentialsRejected])
    }
}

/// A driver that refuses keyring writes (or reads: a damaged database) on demand, to make one account fail.
final class RefusingDriver: StorageDriver {
    let inner: InMemoryStorageDriver
    let refuse = Mutex(false)
    let refuseReads = Mutex(false)
    let reads = Mutex(0)
    var account: String { inner.account }
    init(account: String) { inner = InMemoryStorageDriver(account: account) }
    func readKeyring() async throws -> Keyring? {
        reads.withLock { $0 += 1 }
        if refuseReads.withLock({ $0 }) { throw StorageError(.io, "input/output error") }
        return try await inner.readKeyring()
    }
    func replaceKeyring(_ keyring: Keyring, expectedGeneration: UInt64?) async throws {
        if refuse.withLock({ $0 }) { throw StorageError(.io, "disk full") }
        try await inner.replaceKeyring(keyring, expectedGeneration: expectedGeneration)
    }
    func makeObjectWriter(_ name: ObjectName) async throws -> any ObjectWriter { try await inner.makeObjectWriter(name) }
    func openObject(_ name: ObjectName) async throws -> any ObjectReader { try await inner.openObject(name) }
    func listObjects() async throws -> [ObjectName] { try await inner.listObjects() }
    func deleteObject(_ name: ObjectName, ifRevision revision: ObjectRevision?) async throws {
        try await inner.deleteObject(name, ifRevision: revision)
    }
}
