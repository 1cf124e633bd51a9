import CMKAccounts
import CMKCore
import CMKEnvelope
import CMKPKCS11
import CMKSyncer
import CMKTesting
import Foundation
import Synchronization
import Testing

/// A KeyVault that records the version and algorithm of every unwrap it forwards.
final class UnwrapRecordingVault: KeyVault, Sendable {
    let base: any KeyVault
    private let recorded = Mutex<[String]>([])
    init(_ base: any KeyVault) { self.base = base }
    var unwraps: [String] { recorded.withLock { $0 } }
    var capabilities: VaultCapabilities { base.capabilities }
    func snapshot(of key: KeyReference) async throws -> KeySnapshot { try await base.snapshot(of: key) }
    func publicKey(of key: KeyReference, version: String) async throws -> PublicKeyMaterial { try await base.publicKey(of: key, version: version) }
    func wrap(_ dek: SecretBytes, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> Data {
        try await base.wrap(dek, key: key, version: version, algorithm: algorithm)
    }
    func unwrap(_ wrappedKey: Data, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> SecretBytes {
        recorded.withLock { $0.append("\(version) \(algorithm.rawValue)") }
        return try await base.unwrap(wrappedKey, key: key, version: version, algorithm: algorithm)
    }
}

/// Issue 18 item 3 on SoftHSM: accounts bound under an A256KWP version, the configuration switched
/// to `wrap-algorithm: RSA-OAEP-256`, `keys rotate` makes an RSA version. The rebind wraps each old
/// DEK locally with the new public key and, before writing, unwraps the new wrapping through the
/// vault to check it; SoftHSM 2.6.1 cannot decrypt OAEP-SHA-256, so on it the move stops there:
/// every account fails with the token's precise refusal, nothing is suspended, no keyring changes,
/// and the data stays readable under A256KWP. (openCryptoki, which decrypts OAEP-SHA-256, offers no
/// AES key wrap, so no emulator can complete the move; see docs/providers/pkcs11.md.)
@Suite("PKCS#11 provider: switching from A256KWP to RSA-OAEP-256 on SoftHSM", .serialized)
struct PKCS11AlgorithmMoveTests {
    @Test("after switching to RSA-OAEP-256 on SoftHSM the rebind checks the new wrapping, is refused with CKR_ARGUMENTS_BAD and writes nothing")
    func kwpToRSAOnSoftHSM() async throws {
        let token = try SoftHSMToken.make()
        let h = try TokenPassHarness(token: token)
        defer { h.token.remove() }
        let v1 = try await h.hsm.createKey(h.key, size: .bits2048)
        let (first, _) = await h.pass()
        #expect(first.state == .ok && first.accounts.allSatisfy { $0.binding == v1.id })
        _ = try await h.plane.put(h.accounts[0], try ObjectName("o"), Array("moved".utf8))
        var before: [Keyring?] = []
        for account in h.accounts { before.append(try await account.driver.readKeyring()) }
        #expect(before.allSatisfy { $0.map { !$0.deks.isEmpty && $0.deks.allSatisfy { $0.algorithm == .aesKeyWrapPad && $0.keyVersion == v1.id } } == true })

        // The configuration switched: a provider on the same token with wrap-algorithm RSA-OAEP-256.
        h.clock.advance(by: .seconds(60))
        let rsa = try token.vault(clock: h.clock, sessions: 4, wrapAlgorithm: .rsaOAEP256)
        #expect(rsa.capabilities.wrapAlgorithm == .rsaOAEP256 && rsa.capabilities.algorithms == [.rsaOAEP256, .aesKeyWrapPad])
        let v2 = try await rsa.rotateKey(h.key)
        #expect(try await rsa.publicKey(of: h.key, version: v2.id).bitCount >= 2048)
        let recording = UnwrapRecordingVault(rsa)
        let resolver = DEKResolver(vault: recording, cache: DEKCache(configuration: try .init(ttl: .seconds(600)), clock: h.clock))
        let (report, events) = await SyncPass(settings: h.settings, accounts: h.accounts, vault: CountingKeyVault(recording),
                                              executor: RebindExecutor(resolver: resolver, clock: h.clock), clock: h.clock,
                                              sleep: { _ in }, random: { 0.5 }).run(previous: first)
        #expect(report.state == .degraded)
        #expect(report.cause?.contains("CKR_ARGUMENTS_BAD") == true && report.cause?.contains("A256KWP") == true)
        #expect(report.accounts.allSatisfy { $0.outcome.reason == "vault.unsupported" && !$0.suspended && $0.binding == v1.id })
        #expect(!events.map(\.kind).contains(.accountSuspended))
        // The check that stopped it: an unwrap of a new wrapping under the RSA version, as RSA-OAEP-256.
        #expect(recording.unwraps.contains("\(v2.id) RSA-OAEP-256"))
        for (account, keyring) in zip(h.accounts, before) {
            #expect(try await account.driver.readKeyring() == keyring)
        }
        // The data still reads under the A256KWP version, through the RSA-configured provider too.
        let plane = DataPlane(resolver: DEKResolver(vault: rsa, cache: DEKCache(configuration: try .init(ttl: .seconds(600)), clock: h.clock)))
        #expect(try await plane.get(h.accounts[0], try ObjectName("o")).plaintext == Array("moved".utf8))
    }
}
