import CMKCore
import CMKPKCS11
import CMKTesting
import Foundation
import Synchronization
import Testing

/// The KeyVault conformance suite on a token; `make` gives each check its token (SoftHSM: a new
/// one per check; openCryptoki: the namespace's one, each check on a key name of its own).
func tokenConformance(_ make: @escaping @Sendable () throws -> any TestToken) async throws -> [String] {
    let tokens = Mutex<[any TestToken]>([])
    defer { tokens.withLock { $0.forEach { $0.remove() } } }
    return try await KeyVaultConformance { clock in
        let token = try make()
        tokens.withLock { $0.append(token) }
        return try token.vault(clock: clock, sessions: 4)
    }.run()
}

@Suite("PKCS#11 provider on SoftHSM", .serialized)
struct PKCS11ConformanceTests {
    @Test("passes the KeyVault conformance suite on a SoftHSM v2 token")
    func conformance() async throws {
        // A token of its own per check, as every other provider gets a fresh vault.
        let ran = try await tokenConformance { try SoftHSMToken.make() }
        print("KeyVault conformance (pkcs11 on SoftHSM): \(ran.count) checks passed")
        #expect(ran.count >= 12)
    }
}
