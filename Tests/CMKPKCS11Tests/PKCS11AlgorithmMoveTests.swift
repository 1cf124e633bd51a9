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

/// A test double for a token that offers both mechanisms (no emulator does): RSA-OAEP-256 through
/// an ``InMemoryKeyVault`` (real RSA keys, wrapped locally with the public key), and a stand-in for
/// A256KWP — a 40-byte wrapping, bound to the version, made and checked inside the double (not
/// RFC 5649: the syncer never looks inside a wrapping). `configured` is `wrap-algorithm`.
final class BothAlgorithmsVault: KeyVault, Sendable {
    let base: InMemoryKeyVault
    let configured: Mutex<WrapAlgorithm>
    private let pads = Mutex<[String: [UInt8]]>([:])
    private let recorded = Mutex<[String]>([])
    static let magic = Array("FAKEKWP1".utf8)

    init(base: InMemoryKeyVault, configured: WrapAlgorithm) {
        self.base = base
        self.configured = Mutex(configured)
    }

    /// "version algorithm" of every unwrap, in order.
    var unwraps: [String] { recorded.withLock { $0 } }

    var capabilities: VaultCapabilities {
        configured.withLock { $0 } == .rsaOAEP256
            ? VaultCapabilities(provider: "pkcs11", exportsPublicKey: true, wrapsInVault: false, algorithms: [.rsaOAEP256, .aesKeyWrapPad], managesKeys: true)
            : VaultCapabilities(provider: "pkcs11", exportsPublicKey: false, wrapsInVault: true, algorithms: [.aesKeyWrapPad], managesKeys: true)
    }

    func snapshot(of key: KeyReference) async throws -> KeySnapshot { try await base.snapshot(of: key) }
    func publicKey(of key: KeyReference, version: String) async throws -> PublicKeyMaterial { try await base.publicKey(of: key, version: version) }

    private func pad(_ version: String) -> [UInt8] {
        pads.withLock { pads in
            if let pad = pads[version] { return pad }
            let pad = SecretBytes.random(count: 32).withUnsafeBytes { Array($0) }
            pads[version] = pad
            return pad
        }
    }

    func wrap(_ dek: SecretBytes, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> Data {
        guard algorithm == .aesKeyWrapPad else { return try await base.wrap(dek, key: key, version: version, algorithm: algorithm) }
        let pad = pad(version)
        return Data(Self.magic + dek.withUnsafeBytes { Array(zip($0, pad).map { $0 ^ $1 }) })
    }

    func unwrap(_ wrappedKey: Data, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> SecretBytes {
        recorded.withLock { $0.append("\(version) \(algorithm.rawValue)") }
        let isStandIn = wrappedKey.count == 40 && Array(wrappedKey.prefix(8)) == Self.magic
        guard algorithm == .aesKeyWrapPad else {
            guard !isStandIn else { throw VaultError(.invalidInput, "an A256KWP wrapping unwrapped as RSA-OAEP-256") }
            return try await base.unwrap(wrappedKey, key: key, version: version, algorithm: algorithm)
        }
        guard isStandIn, let pad = pads.withLock({ $0[version] }) else {
            throw VaultError(.invalidInput, "not an A256KWP wrapping of version \(version)")
        }
        return SecretBytes(copying: zip(wrappedKey.dropFirst(8), pad).map { $0 ^ $1 })
    }
}

/// The syncer's side of the move, on the double above: each DEK unwrapped with the algorithm its
/// keyring records, re-wrapped with the configured one, in both directions.
@Suite("Moving accounts between A256KWP and RSA-OAEP-256 (test double offering both)", .serialized)
struct AlgorithmMoveDoubleTests {
    @Test("A256KWP -> RSA-OAEP-256 -> A256KWP: each rebind unwraps every DEK with its recorded algorithm and records the configured one")
    func bothDirections() async throws {
        let clock = ManualClock()
        let base = InMemoryKeyVault(clock: clock)
        let vault = BothAlgorithmsVault(base: base, configured: .aesKeyWrapPad)
        let key = try KeyReference("root-key")
        let accounts = try ["files-1", "sql-1"].map { Account(name: $0, kind: .file, driver: InMemoryStorageDriver(account: $0), key: key) }
        let settings = SyncPass.Settings(key: key, concurrency: 2)
        func pass(_ previous: SyncReport?) async throws -> SyncReport {
            // A fresh DEK cache per pass, as after a restart with the new configuration.
            let resolver = DEKResolver(vault: vault, cache: DEKCache(configuration: try .init(ttl: .seconds(600)), clock: clock))
            return await SyncPass(settings: settings, accounts: accounts, vault: CountingKeyVault(vault),
                                  executor: RebindExecutor(resolver: resolver, clock: clock), clock: clock,
                                  sleep: { _ in }, random: { 0.5 }).run(previous: previous).report
        }
        func keyrings() async throws -> [Keyring] {
            var all: [Keyring] = []
            for account in accounts { all.append(try #require(try await account.driver.readKeyring())) }
            return all
        }
        let v1 = try await base.createKey(key)
        let first = try await pass(nil)
        #expect(first.state == .ok)
        let plane = DataPlane(resolver: DEKResolver(vault: vault, cache: DEKCache(configuration: try .init(ttl: .seconds(600)), clock: clock)))
        _ = try await plane.put(accounts[0], try ObjectName("o"), Array("both ways".utf8))
        #expect(try await keyrings().allSatisfy { !$0.deks.isEmpty && $0.deks.allSatisfy { $0.algorithm == .aesKeyWrapPad && $0.keyVersion == v1.id && $0.wrappedKey.count == 40 } })

        // wrap-algorithm: RSA-OAEP-256, keys rotate, a pass.
        vault.configured.withLock { $0 = .rsaOAEP256 }
        clock.advance(by: .seconds(60))
        let v2 = try await base.rotateKey(key)
        let second = try await pass(first)
        #expect(second.state == .ok && second.accounts.allSatisfy { $0.binding == v2.id && $0.outcome.code == .rebound })
        #expect(try await keyrings().allSatisfy { $0.deks.allSatisfy { $0.algorithm == .rsaOAEP256 && $0.keyVersion == v2.id && $0.wrappedKey.count == 256 } })
        #expect(vault.unwraps.contains("\(v1.id) A256KWP") && !vault.unwraps.contains("\(v1.id) RSA-OAEP-256"))

        // And back: wrap-algorithm: A256KWP, keys rotate, a pass.
        vault.configured.withLock { $0 = .aesKeyWrapPad }
        clock.advance(by: .seconds(60))
        let v3 = try await base.rotateKey(key)
        let third = try await pass(second)
        #expect(third.state == .ok && third.accounts.allSatisfy { $0.binding == v3.id && $0.outcome.code == .rebound })
        #expect(try await keyrings().allSatisfy { $0.deks.allSatisfy { $0.algorithm == .aesKeyWrapPad && $0.keyVersion == v3.id && $0.wrappedKey.count == 40 } })
        #expect(vault.unwraps.contains("\(v2.id) RSA-OAEP-256") && !vault.unwraps.contains("\(v2.id) A256KWP"))
        let cold = DataPlane(resolver: DEKResolver(vault: vault, cache: DEKCache(configuration: try .init(ttl: .seconds(600)), clock: clock)))
        #expect(try await cold.get(accounts[0], try ObjectName("o")).plaintext == Array("both ways".utf8))
    }
}
