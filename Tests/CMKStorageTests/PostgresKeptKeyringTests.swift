import CMKCore
@testable import CMKPostgresStorage
import CMKTesting
import Foundation
import Testing

/// The postgres driver keeps the keyring it decoded and serves it again only while the row has the
/// same generation and row version (`xmin`); docs/storage.md "Kept keyrings".
@Suite("PostgreSQL kept keyrings", .serialized)
struct PostgresKeptKeyringTests {
    @Test("an unchanged keyring is not decoded again; a write by another pool, or behind the driver's back at the same generation, is read at once")
    func keptKeyringIsNeverStale() async throws {
        let server = try PostgresServer.shared()
        let daemon = try PostgresStore(PostgresStorageDriverTests.configuration(server))
        let other = try PostgresStore(PostgresStorageDriverTests.configuration(server, tcp: true))
        let account = "kept-\(UInt32.random(in: .min ... .max))"
        let driver = PostgresStorageDriver(store: daemon, account: account)
        let elsewhere = PostgresStorageDriver(store: other, account: account)

        #expect(try await driver.readKeyring() == nil)
        let first = sampleKeyring(account, generation: 1)
        try await driver.replaceKeyring(first, expectedGeneration: nil)
        #expect(try await driver.readKeyring() == first)
        #expect(try await driver.readKeyring() == first)
        #expect(try await driver.readKeyring() == first)
        #expect(driver.decodes.withLock { $0 } == 1, "an unchanged row was decoded again")

        // Another daemon (another pool) writes generation 2: the next read sees it.
        let second = sampleKeyring(account, generation: 2)
        try await elsewhere.replaceKeyring(second, expectedGeneration: 1)
        #expect(try await driver.readKeyring() == second)
        #expect(driver.decodes.withLock { $0 } == 2)

        // A write outside the driver that keeps the generation (a restore, a DBA's UPDATE): the
        // row version moved, so the next read decodes the row again.
        let restored = sampleKeyring(account, generation: 2)
        let json = String(decoding: try KeyringJSON.encodeChecked(restored, account: account, expectedGeneration: 1), as: UTF8.self)
        try server.psql("UPDATE cmk_keyrings SET json = convert_to('\(json.replacingOccurrences(of: "'", with: "''"))', 'UTF8') WHERE account = '\(account)'",
                        database: server.database)
        #expect(try await driver.readKeyring() == restored, "a keyring rewritten at the same generation was served from the kept copy")

        // Our own CAS write, then a deleted row: both seen.
        let third = sampleKeyring(account, generation: 3)
        try await driver.replaceKeyring(third, expectedGeneration: 2)
        #expect(try await driver.readKeyring() == third)
        try server.psql("DELETE FROM cmk_keyrings WHERE account = '\(account)'", database: server.database)
        #expect(try await driver.readKeyring() == nil)
        await daemon.shutdown()
        await other.shutdown()
    }
}
