import CMKCore
import CMKLocalVault
import CMKTesting
import Foundation
import Testing

@Suite("Local vault conformance")
struct LocalVaultConformanceTests {
    @Test("passes the KeyVault conformance suite")
    func conformance() async throws {
        let root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("cmk-lv-conf-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let ran = try await KeyVaultConformance { clock in
            let directory = root.appendingPathComponent(UUID().uuidString)
            return try LocalVault(configuration: LocalVaultConfiguration(
                directory: directory, masterKey: .bytes(SecretBytes.random(count: 32)), clock: clock))
        }.run()
        print("KeyVault conformance (local): \(ran.count) checks passed")
        #expect(ran.count >= 12)
    }
}
