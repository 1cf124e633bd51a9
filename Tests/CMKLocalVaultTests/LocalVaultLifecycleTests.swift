import CMKCore
import CMKEnvelope
import CMKLocalVault
import Foundation
import Testing

@Suite("LocalVault delete, recover, purge")
struct LocalVaultLifecycleTests {
    @Test(arguments: [(nil, 90), (7, 7), (30, 30), (90, 90)] as [(Int?, Int)])
    func softDeleteDatesFollowRetention(_ configured: Int?, _ expectedDays: Int) async throws {
        try await withFixture { fixture in
            let vault = try configured.map { try fixture.open(retentionDays: $0) } ?? fixture.open()
            let ref = key()
            let version = try await vault.createKey(ref, size: .bits2048)
            fixture.clock.advance(days: 1)
            let deleted = try await vault.deleteKey(ref)
            let now = fixture.clock.now()
            #expect(deleted.deletedDate == now)
            #expect(deleted.scheduledPurgeDate == now.addingTimeInterval(Double(expectedDays) * 86_400))
            #expect(deleted.versions == [version])
            #expect(try await vault.snapshot(of: ref) == .deleted(deleted))
            #expect(try await fixture.open().snapshot(of: ref) == .deleted(deleted))
        }
    }

    @Test(arguments: [0, 6, 91, -1, 365])
    func badRetentionRefused(_ days: Int) async throws {
        try await withFixture { fixture in
            let error = await vaultError { _ = try fixture.open(retentionDays: days) }
            #expect(error?.code == .misconfigured)
            #expect(error?.reason.contains("retentionDays is \(days)") == true)
            #expect(error?.reason.contains("7 to 90") == true)
        }
    }

    @Test func deletedKeyRefusesUse() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let ref = key()
            let version = try await vault.createKey(ref, size: .bits2048)
            let dek = DEKWrapping.generateDEK()
            let wrapped = try await vault.wrap(dek, key: ref, version: version.id, algorithm: .rsaOAEP256)
            _ = try await vault.unwrap(wrapped, key: ref, version: version.id, algorithm: .rsaOAEP256)
            _ = try await vault.deleteKey(ref)
            #expect(await vaultError { _ = try await vault.unwrap(wrapped, key: ref, version: version.id, algorithm: .rsaOAEP256) }?.code == .deleted)
            #expect(await vaultError { _ = try await vault.wrap(dek, key: ref, version: version.id, algorithm: .rsaOAEP256) }?.code == .deleted)
            #expect(await vaultError { _ = try await vault.publicKey(of: ref, version: version.id) }?.code == .deleted)
            #expect(await vaultError { _ = try await vault.rotateKey(ref) }?.code == .deleted)
            #expect(await vaultError { _ = try await vault.updateVersion(ref, version: version.id, KeyVersionUpdate(enabled: false)) }?.code == .deleted)
            #expect(await vaultError { _ = try await vault.deleteKey(ref) }?.code == .deleted)
        }
    }

    @Test func recoverRestoresEveryVersionExactly() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let ref = key()
            let v1 = try await vault.createKey(ref, size: .bits2048)
            fixture.clock.advance(seconds: 1.25)
            let v2 = try await vault.rotateKey(ref)
            let now = fixture.clock.now()
            _ = try await vault.updateVersion(ref, version: v1.id, KeyVersionUpdate(enabled: false, expires: .set(now.addingTimeInterval(0.5))))
            _ = try await vault.updateVersion(ref, version: v2.id, KeyVersionUpdate(notBefore: .set(now.addingTimeInterval(-3))))
            let before = try await presentState(vault, ref)
            let publicKeys = [try await vault.publicKey(of: ref, version: v1.id), try await vault.publicKey(of: ref, version: v2.id)]
            let dek = DEKWrapping.generateDEK()
            let wrapped = try DEKWrapping.wrap(dek, with: publicKeys[1])

            _ = try await vault.deleteKey(ref)
            fixture.clock.advance(days: 10)
            #expect(await vaultError { _ = try await vault.recoverKey(key("other")) }?.code == .notFound)
            let recovered = try await vault.recoverKey(ref)
            #expect(recovered == before)
            #expect(try await vault.snapshot(of: ref) == .present(before))
            #expect(try await vault.publicKey(of: ref, version: v1.id) == publicKeys[0])
            #expect(try await vault.unwrap(wrapped, key: ref, version: v2.id, algorithm: .rsaOAEP256) == dek)
            // Recovering a present key is a conflict.
            #expect(await vaultError { _ = try await vault.recoverKey(ref) }?.code == .conflict)
        }
    }

    @Test func purgeProtectionHoldsUntilScheduledDate() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open(retentionDays: 7)
            let ref = key()
            _ = try await vault.createKey(ref, size: .bits2048)
            // Only deleted keys can be purged.
            #expect(await vaultError { try await vault.purgeKey(ref) }?.code == .conflict)
            #expect(await vaultError { try await vault.purgeKey(key("never")) }?.code == .notFound)

            let deleted = try await vault.deleteKey(ref)
            let refused = await vaultError { try await vault.purgeKey(ref) }
            #expect(refused?.code == .conflict)
            #expect(refused?.reason.contains("purge protection") == true)
            fixture.clock.advance(days: 7)
            fixture.clock.advance(seconds: -1)
            #expect(await vaultError { try await vault.purgeKey(ref) }?.code == .conflict)
            fixture.clock.advance(seconds: 1)
            #expect(fixture.clock.now() == deleted.scheduledPurgeDate)
            try await vault.purgeKey(ref)
            #expect(try await vault.snapshot(of: ref) == .missing(ref))
            #expect(!FileManager.default.fileExists(atPath: fixture.keyFile(ref.name).path))
            // The name is not free again: the vault remembers the purge, and only an explicit
            // replacement creates the key anew.
            #expect(await vaultError { _ = try await vault.createKey(ref, size: .bits2048) }?.code == .conflict)
            _ = try await vault.replaceLostKey(ref, size: .bits2048)
        }
    }

    @Test func purgeWithoutProtectionIsAllowedAtOnce() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open(purgeProtection: false)
            let ref = key()
            let version = try await vault.createKey(ref, size: .bits2048)
            let wrapped = try await vault.wrap(DEKWrapping.generateDEK(), key: ref, version: version.id, algorithm: .rsaOAEP256)
            _ = try await vault.deleteKey(ref)
            try await vault.purgeKey(ref)
            #expect(try await vault.snapshot(of: ref) == .missing(ref))
            #expect(await vaultError { _ = try await vault.unwrap(wrapped, key: ref, version: version.id, algorithm: .rsaOAEP256) }?.code == .notFound)
            #expect(await vaultError { _ = try await vault.recoverKey(ref) }?.code == .notFound)
        }
    }
}
