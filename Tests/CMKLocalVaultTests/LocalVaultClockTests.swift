import CMKCore
import CMKLocalVault
import Foundation
import Testing

/// Purge protection never trusts the clock of whoever pulls or purges (issue 24, defect 9): the
/// deletion is dated no earlier than the key's own history, and a deletion date recorded in the
/// past of that history does not shorten the retention either.
@Suite("LocalVault purge protection with a clock that steps")
struct LocalVaultClockTests {
    static let day: TimeInterval = 86_400

    @Test("a pull with the clock a year behind is dated at the newest version and keeps the whole retention")
    func pullWithClockBehind() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open(retentionDays: 7)
            let ref = key()
            _ = try await vault.createKey(ref, size: .bits2048)
            fixture.clock.advance(days: 3)
            let newest = try await vault.rotateKey(ref)
            fixture.clock.set(newest.created.addingTimeInterval(-365 * Self.day))
            let deleted = try await vault.deleteKey(ref)
            #expect(deleted.deletedDate == newest.created)
            #expect(deleted.scheduledPurgeDate == newest.created.addingTimeInterval(7 * Self.day))
            #expect(try await vault.snapshot(of: ref) == .deleted(deleted))

            let refused = await vaultError { try await vault.purgeKey(ref) }
            #expect(refused?.code == .conflict)
            #expect(refused?.reason.contains("purge protection is on") == true)
            fixture.clock.set(newest.created.addingTimeInterval(7 * Self.day - 1))
            #expect(await vaultError { try await vault.purgeKey(ref) }?.code == .conflict)
            fixture.clock.advance(seconds: 1)
            try await vault.purgeKey(ref)
            #expect(try await vault.snapshot(of: ref) == .missing(ref))
        }
    }

    @Test("the key's last write counts: a version disabled later dates a pull with a clock stepped back")
    func lastWriteCounts() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open(retentionDays: 7)
            let ref = key()
            let version = try await vault.createKey(ref, size: .bits2048)
            let created = version.created
            fixture.clock.advance(days: 10)
            let written = fixture.clock.now()
            _ = try await vault.updateVersion(ref, version: version.id, KeyVersionUpdate(enabled: false))
            fixture.clock.set(created)
            let deleted = try await vault.deleteKey(ref)
            #expect(deleted.deletedDate == written)
            #expect(deleted.scheduledPurgeDate == written.addingTimeInterval(7 * Self.day))
        }
    }

    @Test("a recorded deletion date in the past of the key's history does not shorten the retention")
    func recordedDeletionInThePast() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open(retentionDays: 7)
            let ref = key()
            let version = try await vault.createKey(ref, size: .bits2048)
            _ = try await vault.deleteKey(ref)
            // As an older cmkctl with its clock a year behind wrote it: no `written`, dates a year back.
            let path = fixture.keyFile(ref.name).path
            var document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            let created = version.created.timeIntervalSince1970
            document["deletedDate"] = created - 365 * Self.day
            document["scheduledPurgeDate"] = created - 358 * Self.day
            document["written"] = nil
            try JSONSerialization.data(withJSONObject: document).write(to: URL(fileURLWithPath: path))
            #expect(chmod(path, 0o600) == 0)

            let reopened = try fixture.open(retentionDays: 7)
            guard case .deleted(let seen) = try await reopened.snapshot(of: ref) else {
                Issue.record("the key should read as deleted")
                return
            }
            #expect(seen.scheduledPurgeDate == version.created.addingTimeInterval(7 * Self.day))
            let refused = await vaultError { try await reopened.purgeKey(ref) }
            #expect(refused?.code == .conflict)
            #expect(refused?.reason.contains(version.created.addingTimeInterval(7 * Self.day).ISO8601Format()) == true)
            fixture.clock.advance(days: 7)
            try await reopened.purgeKey(ref)
        }
    }
}
