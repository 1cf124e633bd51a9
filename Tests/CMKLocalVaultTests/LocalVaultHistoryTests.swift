import CMKCore
@testable import CMKLocalVault
import Foundation
import Testing

/// `vault.json` remembers every key the vault held, so that a purged or vanished key is never
/// created again implicitly (issue 14, defect 2).
@Suite("LocalVault key history")
struct LocalVaultHistoryTests {
    private func markerURL(_ fixture: VaultFixture) -> URL { fixture.vaultDirectory.appendingPathComponent("vault.json") }

    private func marker(_ fixture: VaultFixture) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(contentsOf: markerURL(fixture))) as? [String: Any])
    }

    @Test func firstKeyIsCreatedOnceAndRecorded() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            #expect(try vault.history(of: key()) == .neverHeld)
            let version = try #require(try await vault.createKeyIfNeverHeld(key(), size: .bits2048))
            #expect(try await vault.createKeyIfNeverHeld(key(), size: .bits2048) == nil)
            #expect(try vault.history(of: key()) == .present)
            let record = try #require((try marker(fixture)["keys"] as? [String: Any])?[key().name] as? [String: Any])
            #expect(record["created"] as? Double == version.created.timeIntervalSince1970)
            #expect(record["creating"] == nil)
            #expect(record["purged"] == nil)
        }
    }

    @Test func purgedKeyStaysPurgedUntilReplacedExplicitly() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open(purgeProtection: false)
            _ = try await vault.createKey(key(), size: .bits2048)
            _ = try await vault.deleteKey(key())
            fixture.clock.advance(seconds: 60)
            try await vault.purgeKey(key())
            let purged = fixture.clock.now()
            for opened in [vault, try fixture.open()] {
                #expect(try opened.history(of: key()) == .purged(purged))
                #expect(try await opened.createKeyIfNeverHeld(key(), size: .bits2048) == nil)
                #expect(try await opened.snapshot(of: key()) == .missing(key()))
                let refused = await vaultError { _ = try await opened.createKey(key(), size: .bits2048) }
                #expect(refused?.code == .conflict)
                #expect(refused?.reason.contains("was purged on \(purged.ISO8601Format())") == true)
                #expect(refused?.reason.contains("cmkctl keys create --replace-purged") == true)
            }
            let (version, replaced) = try await vault.replaceLostKey(key(), size: .bits2048)
            #expect(replaced == .purged(purged))
            #expect(try await presentState(vault, key()).current?.id == version.id)
            let record = try #require((try marker(fixture)["keys"] as? [String: Any])?[key().name] as? [String: Any])
            #expect(record["replaced"] as? Int == 1)
            #expect(record["purged"] == nil)
            // Replacing needs a lost key.
            #expect(await vaultError { _ = try await vault.replaceLostKey(key(), size: .bits2048) }?.code == .conflict)
            #expect(await vaultError { _ = try await vault.replaceLostKey(key("never-held"), size: .bits2048) }?.code == .conflict)
        }
    }

    @Test func keyFileDeletedByHandIsVanishedNotNew() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let version = try await vault.createKey(key(), size: .bits2048)
            try FileManager.default.removeItem(at: fixture.keyFile(key().name))
            #expect(try vault.history(of: key()) == .vanished(created: version.created))
            #expect(try await vault.createKeyIfNeverHeld(key(), size: .bits2048) == nil)
            let refused = await vaultError { _ = try await vault.createKey(key(), size: .bits2048) }
            #expect(refused?.code == .conflict)
            #expect(refused?.reason.contains("is gone") == true)
            #expect(try await vault.replaceLostKey(key(), size: .bits2048).replaced == .vanished(created: version.created))
        }
    }

    @Test func vaultWithoutHistoryNeverCreatesImplicitly() async throws {
        try await withFixture { fixture in
            _ = try fixture.open()
            var old = try marker(fixture)
            old["keys"] = nil
            try JSONSerialization.data(withJSONObject: old).write(to: markerURL(fixture))
            let vault = try fixture.open()
            #expect(try vault.history(of: key()) == .unknown)
            #expect(try await vault.createKeyIfNeverHeld(key(), size: .bits2048) == nil)
            // An operator may create it; from then on the history knows it.
            _ = try await vault.createKey(key(), size: .bits2048)
            #expect(try marker(fixture)["keysSince"] != nil)
            try FileManager.default.removeItem(at: fixture.keyFile(key().name))
            if case .vanished = try vault.history(of: key()) {} else { Issue.record("expected vanished") }
            #expect(try vault.history(of: key("other")) == .unknown)
        }
    }

    @Test func missingVaultFileBesideKeyFilesIsCorrupt() async throws {
        try await withFixture { fixture in
            _ = try await fixture.open().createKey(key(), size: .bits2048)
            try FileManager.default.removeItem(at: markerURL(fixture))
            let error = await vaultError { _ = try fixture.open() }
            #expect(error?.code == .corrupt)
            #expect(error?.reason.contains("restore") == true)
        }
    }
}
