import CMKCore
@testable import CMKPostgresStorage
import CMKTesting
import Foundation
import Testing

/// Rebind leases (`cmk_leases`, docs/storage.md "Leases") against a real PostgreSQL server: one
/// claimer wins, the holder may claim again, a released or expired lease goes to the next, and
/// two pools racing for the same accounts get exactly one winner each.
@Suite("PostgreSQL rebind leases", .serialized)
struct PostgresLeasesTests {
    /// A fresh database on the test process's server.
    static func database() throws -> PostgresStorageConfiguration {
        let server = try PostgresServer.shared()
        let name = "leases_\(UInt32.random(in: .min ... .max))"
        try server.psql("CREATE DATABASE \(name) OWNER \(server.user)")
        var configuration = PostgresStorageDriverTests.configuration(server)
        configuration.database = name
        return configuration
    }

    @Test("claim, claim again by the holder, refused to another with holder and end, released, expired, last holders")
    func claimReleaseExpire() async throws {
        let store = try PostgresStore(try Self.database())
        let leases = PostgresLeases(store: store)
        let one = LeaseHolder(name: "host-1", token: "t1"), two = LeaseHolder(name: "host-2", token: "t2")
        #expect(try await leases.claim("a", as: one, for: .seconds(60)) == .granted)
        #expect(try await leases.claim("a", as: one, for: .seconds(60)) == .granted, "the holder renews its own lease")
        guard case .heldElsewhere(let holder, let until) = try await leases.claim("a", as: two, for: .seconds(60)) else {
            Issue.record("host-2 got host-1's lease")
            return
        }
        #expect(holder == "host-1" && until.timeIntervalSinceNow > 50)
        // The same name with another token (a restarted or misconfigured twin) does not share it.
        #expect(try await leases.claim("a", as: LeaseHolder(name: "host-1", token: "t1-restarted"), for: .seconds(60)) != .granted)
        try await leases.release("a", as: two)  // not host-2's: left alone
        #expect(try await leases.claim("a", as: two, for: .seconds(60)) != .granted)
        try await leases.release("a", as: one)
        #expect(try await leases.claim("a", as: two, for: .seconds(60)) == .granted, "a released lease goes to the next claimer")

        #expect(try await leases.claim("b", as: one, for: .seconds(1)) == .granted)
        #expect(try await leases.claim("b", as: two, for: .seconds(1)) != .granted)
        try await Task.sleep(for: .milliseconds(1300))
        #expect(try await leases.claim("b", as: two, for: .seconds(60)) == .granted, "an expired lease goes to the next claimer")
        #expect(try await leases.lastHolders(of: ["a", "b", "never-leased"]) == ["a": "host-2", "b": "host-2"])
        await store.shutdown()
    }

    @Test("two daemons' pools racing for the same 40 accounts: exactly one claim wins each")
    func race() async throws {
        let configuration = try Self.database()
        var tcp = configuration
        tcp.endpoint = .tcp(host: "127.0.0.1", port: try PostgresServer.shared().port)
        let stores = [try PostgresStore(configuration), try PostgresStore(tcp)]
        let first = PostgresLeases(store: stores[0]), second = PostgresLeases(store: stores[1])
        let holders = [LeaseHolder(name: "host-1", token: "t1"), LeaseHolder(name: "host-2", token: "t2")]
        for account in (0..<40).map({ "acct-\($0)" }) {
            let granted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for (leases, holder) in zip([first, second], holders) {
                    group.addTask { try await leases.claim(account, as: holder, for: .seconds(60)) == .granted }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(granted == 1, "\(account): \(granted) claims granted")
        }
        for store in stores { await store.shutdown() }
    }
}
