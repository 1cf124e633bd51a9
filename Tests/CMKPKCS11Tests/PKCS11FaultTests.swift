@testable import CMKPKCS11
import CMKCore
import CMKEnvelope
import CMKSyncer
import CPKCS11
import CMKTesting
import Foundation
import Synchronization
import Testing

/// Faults no emulator produces, on a real SoftHSM token behind the fault-injecting module
/// (``FaultModule``): the device removed, the token absent, a session lost or logged out in the
/// middle of an unwrap, and a slow token whose calls are held at a gate.
@Suite("PKCS#11 provider: CKR_ faults and a slow token through the fault-injecting module on SoftHSM", .serialized)
struct PKCS11FaultTests {
    /// A token behind the fault module with an AES version, one DEK wrapped under it and unwrapped once.
    private func prepared(sessions: Int = 2) async throws -> (SoftHSMToken, FaultModule, PKCS11KeyVault, KeyReference, String, SecretBytes, Data) {
        let token = try SoftHSMToken.make().withFaults()
        let fault = try #require(token.fault)
        let vault = try token.vault(sessions: sessions)
        let key = try KeyReference("faulted-key")
        let version = try await vault.createKey(key, size: .bits2048)
        let dek = DEKWrapping.generateDEK()
        let wrapped = try await vault.wrap(dek, key: key, version: version.id, algorithm: .aesKeyWrapPad)
        #expect(try await vault.unwrap(wrapped, key: key, version: version.id, algorithm: .aesKeyWrapPad) == dek)
        #expect(fault.applied == [])
        return (token, fault, vault, key, version.id, dek, wrapped)
    }

    @Test("C_UnwrapKey fails once with a lost device, token, session or login: the pool recovers and the same unwrap succeeds",
          arguments: [
              (CK_RV(0x32), "CKR_DEVICE_REMOVED"), (CK_RV(0xE0), "CKR_TOKEN_NOT_PRESENT"),
              (CK_RV(0xB3), "CKR_SESSION_HANDLE_INVALID"), (CK_RV(0x101), "CKR_USER_NOT_LOGGED_IN"),
          ])
    func lostMidUnwrap(rv: CK_RV, name: String) async throws {
        let (token, fault, vault, key, version, dek, wrapped) = try await prepared()
        defer { token.remove() }
        let before = vault.poolStatistics
        try fault.set(["C_UnwrapKey 0x\(String(rv, radix: 16)) 1 0"])
        #expect(try await vault.unwrap(wrapped, key: key, version: version, algorithm: .aesKeyWrapPad) == dek, "after \(name)")
        #expect(fault.applied == ["C_UnwrapKey 0x\(String(rv, radix: 16, uppercase: true))"])
        let after = vault.poolStatistics
        // Every recovery logs in again (SoftHSM answers CKR_USER_ALREADY_LOGGED_IN while a session of the
        // application is open, which counts); all but the re-login open a new session.
        #expect(after.logins == before.logins + 1, "\(name): logins \(before.logins) -> \(after.logins)")
        #expect(after.opened == before.opened + (rv == 0x101 ? 0 : 1), "\(name): opened \(before.opened) -> \(after.opened)")
        #expect(after.inUse == 0)
        #expect(try await vault.unwrap(wrapped, key: key, version: version, algorithm: .aesKeyWrapPad) == dek)
    }

    @Test("the device removed twice in a row: vault.unavailable naming C_UnwrapKey and CKR_DEVICE_REMOVED, then the next unwrap succeeds")
    func removedTwice() async throws {
        let (token, fault, vault, key, version, dek, wrapped) = try await prepared()
        defer { token.remove() }
        try fault.set(["C_UnwrapKey 0x32 2 0"])
        do {
            _ = try await vault.unwrap(wrapped, key: key, version: version, algorithm: .aesKeyWrapPad)
            Issue.record("an unwrap failing twice must fail")
        } catch let error as VaultError {
            #expect(error.code == .unavailable)
            #expect(error.reason.contains("C_UnwrapKey returned CKR_DEVICE_REMOVED"))
        }
        #expect(vault.poolStatistics.inUse == 0)
        #expect(try await vault.unwrap(wrapped, key: key, version: version, algorithm: .aesKeyWrapPad) == dek)
    }

    @Test("the token absent for a while: an outage (degraded, vault.unavailable, nothing suspended), then the next pass is ok")
    func tokenAbsentForAWhile() async throws {
        let token = try SoftHSMToken.make().withFaults()
        defer { token.remove() }
        let fault = try #require(token.fault)
        let h = try TokenPassHarness(token: token)
        _ = try await h.hsm.createKey(h.key, size: .bits2048)
        let (first, _) = await h.pass()
        #expect(first.state == .ok)
        // The slot stays, its token is gone: every call on it answers CKR_TOKEN_NOT_PRESENT.
        try fault.set(["C_GetSlotList 0 -1 0", "* 0xE0 -1 0"])
        do {
            _ = try await h.hsm.snapshot(of: h.key)
            Issue.record("a snapshot without the token must fail")
        } catch let error as VaultError {
            #expect(error.code == .unavailable)
            #expect(error.reason.contains("CKR_TOKEN_NOT_PRESENT") && error.reason.contains("tokens present: none"), "\(error.reason)")
        }
        let (outage, events) = await h.pass(previous: first)
        #expect(outage.state == .degraded && outage.cause?.contains("unreachable") == true, "\(outage.state) \(outage.cause ?? "")")
        #expect(outage.accounts.allSatisfy { !$0.suspended && $0.outcome.reason == "vault.unavailable" })
        #expect(events.map(\.kind).contains(.vaultUnreachable))
        #expect(!events.map(\.kind).contains(.accountSuspended))
        try fault.clear()
        let (back, _) = await h.pass(previous: outage)
        #expect(back.state == .ok && back.accounts.allSatisfy { !$0.suspended && $0.binding == first.accounts.first?.binding })
        #expect(h.hsm.poolStatistics.inUse == 0)
    }

    /// Counts the ticks of a task that is not a token call.
    private final class Ticks: Sendable {
        let count = Atomic(0)
    }

    @Test("a slow token: 16 concurrent unwraps run on the provider's threads with more than 2 sessions in use, and other tasks keep running")
    func slowToken() async throws {
        let (token, fault, vault, key, version, dek, wrapped) = try await prepared(sessions: 4)
        defer { token.remove() }
        // Every C_UnwrapKey waits at a gate (at most 15 s: a margin for a loaded machine) until the test opens it.
        let gate = token.directory.appendingPathComponent("gate").path
        try fault.set(["C_UnwrapKey 0 -1 0 \(gate) 15000"])
        let ticks = Ticks()
        let ticker = Task {
            while !Task.isCancelled {
                ticks.count.add(1, ordering: .relaxed)
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
        let unwraps = Task {
            try await withThrowingTaskGroup(of: SecretBytes.self) { group in
                for _ in 0..<16 { group.addTask { try await vault.unwrap(wrapped, key: key, version: version, algorithm: .aesKeyWrapPad) } }
                var all: [SecretBytes] = []
                for try await dek in group { all.append(dek) }
                return all
            }
        }
        // This loop is itself a task on the cooperative pool: with the calls held on it, it would not run.
        var polls = 0
        while vault.poolStatistics.inUse < 4, polls < 2000 {
            try await Task.sleep(for: .milliseconds(5))
            polls += 1
        }
        let held = vault.poolStatistics.inUse
        let ticksBefore = ticks.count.load(ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(50))
        let ticksWhileHeld = ticks.count.load(ordering: .relaxed) - ticksBefore
        let stillHeld = vault.poolStatistics.inUse
        FileManager.default.createFile(atPath: gate, contents: nil)
        let results = try await unwraps.value
        ticker.cancel()
        let statistics = vault.poolStatistics
        print("slow token: \(held) sessions held at the gate, \(ticksWhileHeld) ticks of another task in 50 ms meanwhile; peak in use \(statistics.peakInUse), threads \(statistics.peakThreads), sessions opened \(statistics.opened)")
        #expect(held == 4 && stillHeld == 4, "sessions in use at the gate: \(held), then \(stillHeld)")
        #expect(ticksWhileHeld > 0)
        #expect(results.count == 16 && results.allSatisfy { $0 == dek })
        #expect(statistics.peakInUse > 2 && statistics.peakThreads == 4 && statistics.inUse == 0)
        #expect(fault.applied.count == 16)
    }
}
