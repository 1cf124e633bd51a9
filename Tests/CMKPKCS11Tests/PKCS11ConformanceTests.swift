import CMKCore
import CMKPKCS11
import CMKTesting
import Foundation
import Synchronization
import Testing

@Suite("PKCS#11 provider on SoftHSM", .serialized)
struct PKCS11ConformanceTests {
    @Test("passes the KeyVault conformance suite on a SoftHSM v2 token")
    func conformance() async throws {
        let tokens = Mutex<[SoftHSMToken]>([])
        defer { tokens.withLock { $0.forEach { $0.remove() } } }
        let ran = try await KeyVaultConformance { clock in
            // A token of its own per check, as every other provider gets a fresh vault.
            let token = try SoftHSMToken.make()
            tokens.withLock { $0.append(token) }
            return try token.vault(clock: clock)
        }.run()
        print("KeyVault conformance (pkcs11 on SoftHSM): \(ran.count) checks passed")
        #expect(ran.count >= 12)
    }
}
