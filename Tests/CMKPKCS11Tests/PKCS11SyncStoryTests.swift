import CMKAccounts
import CMKCore
import CMKEnvelope
import CMKPKCS11
import CMKSyncer
import CMKTesting
import Foundation
import Testing

/// Sync passes over in-memory accounts with the root key on a token (SPEC §5 on the PKCS#11 provider).
final class TokenPassHarness: Sendable {
    let clock = ManualClock()
    let token: any TestToken
    let hsm: PKCS11KeyVault
    let key: KeyReference
    let executor: RebindExecutor
    let plane: DataPlane
    let accounts: [Account]
    let settings: SyncPass.Settings
    let vault: CountingKeyVault

    init(token: any TestToken) throws {
        self.token = token
        hsm = try token.vault(clock: clock, sessions: 4)
        key = try KeyReference("root-key")
        vault = CountingKeyVault(hsm)
        let resolver = DEKResolver(vault: vault, cache: DEKCache(configuration: try .init(ttl: .seconds(600)), clock: clock))
        executor = RebindExecutor(resolver: resolver, clock: clock)
        plane = DataPlane(resolver: resolver)
        accounts = try ["files-1", "sql-1", "audit-1"].map { Account(name: $0, kind: .file, driver: InMemoryStorageDriver(account: $0), key: try KeyReference("root-key")) }
        settings = SyncPass.Settings(key: key, concurrency: 2)
    }

    func pass(vault: CountingKeyVault? = nil, previous: SyncReport? = nil) async -> (report: SyncReport, events: [SyncEvent]) {
        await SyncPass(settings: settings, accounts: accounts, vault: vault ?? self.vault, executor: executor, clock: clock,
                       sleep: { _ in }, random: { 0.5 }).run(previous: previous)
    }
}

/// The syncer story on a token, run by the SoftHSM suite below and by the openCryptoki suite
/// (OpenCryptokiTests) with the same checks.
enum TokenSyncStory {
    static func rotation(_ token: any TestToken) async throws {
        let h = try TokenPassHarness(token: token)
        defer { h.token.remove() }
        let v1 = try await h.hsm.createKey(h.key, size: .bits2048)
        let (first, _) = await h.pass()
        #expect(first.state == .ok && first.accounts.allSatisfy { $0.binding == v1.id })
        _ = try await h.plane.put(h.accounts[0], try ObjectName("o"), Array("on the token".utf8))
        h.clock.advance(by: .seconds(60))
        let v2 = try await h.hsm.rotateKey(h.key)
        let (report, events) = await h.pass(previous: first)
        #expect(report.state == .ok && report.accounts.map(\.outcome.code) == [.rebound, .rebound, .rebound])
        #expect(report.accounts.allSatisfy { $0.binding == v2.id && $0.previousBinding == v1.id })
        #expect(events.first?.kind == .keyRotated)
        let keyring = try #require(try await h.accounts[0].driver.readKeyring())
        #expect(!keyring.deks.isEmpty && keyring.deks.allSatisfy { $0.algorithm == h.token.wrapAlgorithm && $0.keyVersion == v2.id })
        // RFC 5649 of a 32-byte DEK is 40 bytes; RSA-OAEP under a 2048-bit key 256.
        #expect(keyring.deks.allSatisfy { $0.wrappedKey.count == (h.token.wrapAlgorithm == .aesKeyWrapPad ? 40 : 256) })
        #expect(try await h.plane.get(h.accounts[0], try ObjectName("o")).plaintext == Array("on the token".utf8))
    }

    static func disabledInUse(_ token: any TestToken) async throws {
        let h = try TokenPassHarness(token: token)
        defer { h.token.remove() }
        let v1 = try await h.hsm.createKey(h.key, size: .bits2048)
        let (first, _) = await h.pass()
        let before = try await h.accounts[0].driver.readKeyring()
        h.clock.advance(by: .seconds(60))
        _ = try await h.hsm.rotateKey(h.key)
        _ = try await h.hsm.updateVersion(h.key, version: v1.id, KeyVersionUpdate(enabled: false))
        let (report, events) = await h.pass(previous: first)
        #expect(report.state == .critical)
        #expect(report.cause?.contains("audit-1, files-1, sql-1") == true)
        #expect(events.filter { $0.kind == .versionDisabledInUse }.map(\.account) == ["audit-1", "files-1", "sql-1"])
        #expect(try await h.accounts[0].driver.readKeyring() == before)
        _ = try await h.hsm.updateVersion(h.key, version: v1.id, KeyVersionUpdate(enabled: true))
        #expect(await h.pass(previous: report).report.state == .ok)
    }

    static func pullAndRestore(_ token: any TestToken) async throws {
        let h = try TokenPassHarness(token: token)
        defer { h.token.remove() }
        _ = try await h.hsm.createKey(h.key, size: .bits2048)
        let (first, _) = await h.pass()
        _ = try await h.hsm.deleteKey(h.key)
        let (pulled, _) = await h.pass(previous: first)
        #expect(pulled.state == .keyPulled && pulled.accounts.allSatisfy(\.suspended))
        _ = try await h.hsm.recoverKey(h.key)
        let (restored, _) = await h.pass(previous: pulled)
        #expect(restored.state == .ok && restored.accounts.allSatisfy { !$0.suspended })
    }

    static func tokenUnavailable(_ token: any TestToken) async throws {
        let h = try TokenPassHarness(token: token)
        defer { h.token.remove() }
        _ = try await h.hsm.createKey(h.key, size: .bits2048)
        let (first, _) = await h.pass()
        #expect(first.state == .ok)
        // The same host, its HSM gone: the module's slots hold no token with the label.
        let (unplugged, present) = try h.token.unplugged(clock: h.clock)
        do {
            _ = try await unplugged.snapshot(of: h.key)
            Issue.record("a snapshot without the token must fail")
        } catch let error as VaultError {
            #expect(error.code == .unavailable)
            #expect(error.reason.contains("CKR_TOKEN_NOT_PRESENT") && error.reason.contains("'\(present)'"))
        }
        let (report, events) = await h.pass(vault: CountingKeyVault(unplugged), previous: first)
        #expect(report.state == .degraded && report.cause?.contains("unreachable") == true)
        #expect(report.accounts.allSatisfy { !$0.suspended && $0.outcome.reason == "vault.unavailable" })
        #expect(events.map(\.kind).contains(.vaultUnreachable))
        #expect(!events.map(\.kind).contains(.accountSuspended))
    }
}

@Suite("PKCS#11 provider: the syncer story on SoftHSM", .serialized)
struct PKCS11SyncStoryTests {
    @Test("rotation on the token: every account rebound, its DEKs wrapped with A256KWP under the new version")
    func rotation() async throws { try await TokenSyncStory.rotation(try SoftHSMToken.make()) }

    @Test("an old version disabled on the token while it still wraps DEKs: critical, names the accounts, changes nothing")
    func disabledInUse() async throws { try await TokenSyncStory.disabledInUse(try SoftHSMToken.make()) }

    @Test("pull on the token suspends every account; restore resumes them")
    func pullAndRestore() async throws { try await TokenSyncStory.pullAndRestore(try SoftHSMToken.make()) }

    @Test("token unavailable (no token with the label: the HSM is unplugged or down) is an outage: degraded, nothing suspended")
    func tokenUnavailable() async throws { try await TokenSyncStory.tokenUnavailable(try SoftHSMToken.make()) }
}
