import CMKAccounts
import CMKCore
import CMKTesting
import Foundation
import Testing

/// A pass rebinds up to `sync.concurrency` accounts at once, all to the same new version: the
/// version's proof (one vault unwrap) and its public key are fetched once, not once per account.
@Suite struct DEKResolverSingleFlightTests {
    /// Makes every call take `delay`, so concurrent callers overlap for sure.
    struct SlowVault: KeyVault {
        let base: InMemoryKeyVault
        let delay: Duration
        var capabilities: VaultCapabilities { base.capabilities }
        func snapshot(of key: KeyReference) async throws -> KeySnapshot { try await base.snapshot(of: key) }
        func publicKey(of key: KeyReference, version: String) async throws -> PublicKeyMaterial {
            try await Task.sleep(for: delay)
            return try await base.publicKey(of: key, version: version)
        }
        func wrap(_ dek: SecretBytes, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> Data {
            try await base.wrap(dek, key: key, version: version, algorithm: algorithm)
        }
        func unwrap(_ wrapped: Data, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> SecretBytes {
            try await Task.sleep(for: delay)
            return try await base.unwrap(wrapped, key: key, version: version, algorithm: algorithm)
        }
    }

    @Test("16 concurrent proofs of one version: one public-key read and one unwrap; a later proof costs nothing")
    func concurrentProofsShareOneVaultCall() async throws {
        let harness = try Harness()
        let version = try await harness.vault.createKey(harness.key, size: .bits2048)
        let resolver = DEKResolver(vault: SlowVault(base: harness.vault, delay: .milliseconds(100)), cache: harness.cache)
        let key = harness.key
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<16 { group.addTask { try await resolver.verify(key: key, version: version.id) } }
            try await group.waitForAll()
        }
        #expect(harness.vault.calls.unwrap == 1 && harness.vault.calls.publicKey == 1, "\(harness.vault.calls)")
        try await resolver.verify(key: key, version: version.id)
        #expect(harness.vault.calls.unwrap == 1)
    }

    @Test("a failed proof is shared by the callers waiting for it and tried again by the next caller")
    func failedProofIsRetried() async throws {
        let harness = try Harness()
        let version = try await harness.vault.createKey(harness.key, size: .bits2048)
        let faults = FaultInjectingKeyVault(harness.vault)
        faults.fail(.unwrap, with: [VaultError(.unavailable, "503")])
        let resolver = DEKResolver(vault: faults, cache: harness.cache)
        await #expect(throws: VaultError.self) { try await resolver.verify(key: harness.key, version: version.id) }
        try await resolver.verify(key: harness.key, version: version.id)
        #expect(harness.vault.calls.unwrap == 1, "the failed call never reached the vault; the retry made one: \(harness.vault.calls)")
    }
}
