import CMKCore
import CMKPKCS11
import CMKTesting
import Foundation
import Testing

/// The provider on openCryptoki's soft token with RSA-OAEP-256: each test re-runs itself inside a
/// private namespace with its own pkcsslotd (``OpenCryptoki``); the bodies are the SoftHSM suites'.
@Suite("PKCS#11 provider on openCryptoki's soft token (RSA-OAEP-256)", .serialized)
struct OpenCryptokiTests {
    @Test("passes the KeyVault conformance suite on openCryptoki's soft token")
    func conformance() async throws {
        guard OpenCryptoki.inside else { return try OpenCryptoki.runSelf("OpenCryptokiTests/conformance") }
        let ran = try await tokenConformance { try OpenCryptoki.token() }
        print("KeyVault conformance (pkcs11 on openCryptoki, RSA-OAEP-256): \(ran.count) checks passed")
        #expect(ran.count >= 12)
    }

    @Test("rotation on the token: every account rebound, its DEKs wrapped with RSA-OAEP-256 under the new version")
    func rotation() async throws {
        guard OpenCryptoki.inside else { return try OpenCryptoki.runSelf("OpenCryptokiTests/rotation") }
        try await TokenSyncStory.rotation(try OpenCryptoki.token())
    }

    @Test("an old version disabled on the token while in use: critical, names the accounts, changes nothing")
    func disabledInUse() async throws {
        guard OpenCryptoki.inside else { return try OpenCryptoki.runSelf("OpenCryptokiTests/disabledInUse") }
        try await TokenSyncStory.disabledInUse(try OpenCryptoki.token())
    }

    @Test("pull on the token suspends every account; restore resumes them")
    func pullAndRestore() async throws {
        guard OpenCryptoki.inside else { return try OpenCryptoki.runSelf("OpenCryptokiTests/pullAndRestore") }
        try await TokenSyncStory.pullAndRestore(try OpenCryptoki.token())
    }

    @Test("token unavailable is an outage: degraded, nothing suspended")
    func tokenUnavailable() async throws {
        guard OpenCryptoki.inside else { return try OpenCryptoki.runSelf("OpenCryptokiTests/tokenUnavailable") }
        try await TokenSyncStory.tokenUnavailable(try OpenCryptoki.token())
    }

    @Test("pkcsslotd that cannot start fails the test with its output")
    func slotDaemonFailure() throws {
        // pkcsslotd refusing its arguments exits at once: the run must fail with its output, not skip.
        let (status, output) = try OpenCryptoki.runInNamespace(["/bin/true"], environment: ["CMK_OCK_SLOTD": "/usr/sbin/pkcsslotd --no-such-option"])
        #expect(status == 3 && output.contains("pkcsslotd did not start") && output.contains("usage"), "exit \(status): \(output)")
        // A configuration without slots: pkcsslotd runs, but the token cannot be initialised.
        let (noSlots, said) = try OpenCryptoki.runInNamespace(["/bin/true"], environment: ["CMK_OCK_CONFIG": "version opencryptoki-3.1"])
        #expect(noSlots == 4 && said.contains("pkcsconf -I failed"), "exit \(noSlots): \(said)")
    }
}
