import CMKCore
import CMKTesting
import Testing

@Suite("In-memory vault")
struct InMemoryVaultConformanceTests {
    @Test("passes the KeyVault conformance suite")
    func conformance() async throws {
        let ran = try await KeyVaultConformance { clock in InMemoryKeyVault(clock: clock) }.run()
        print("KeyVault conformance (memory): \(ran.count) checks passed")
        #expect(ran.count >= 12)
    }

    @Test("counts every call")
    func counts() async throws {
        let vault = InMemoryKeyVault(clock: ManualClock())
        let key = try KeyReference("k")
        _ = try await vault.snapshot(of: key)
        let version = try await vault.createKey(key, size: .bits2048)
        _ = try await vault.publicKey(of: key, version: version.id)
        #expect(vault.calls == .init(snapshot: 1, publicKey: 1, wrap: 0, unwrap: 0))
    }
}
