import CMKCore
import CMKPostgresStorage
import CMKSyncer
import CMKTesting
import Foundation
import Testing

/// A PostgreSQL server that stops, restarts or drops connections in the middle of passes: an
/// outage for its accounts (failed with a transient storage reason, retried, reported, nothing
/// suspended), the other accounts unaffected, never a crash; the next pass after it is back
/// rebinds them. Its own server: stopping the shared one would disturb other suites.
@Suite("PostgreSQL outages during passes", .serialized)
struct PostgresOutageTests {
    @Test("server stopped for a whole pass, restarted, connections terminated: outage for postgres accounts only, then rebound")
    func serverRestartAndDroppedConnections() async throws {
        let server = try PostgresServer.start()
        defer { server.stop() }
        let store = try PostgresStore(PostgresStorageConfiguration(
            endpoint: .unixSocket(directory: server.socketDirectory, port: server.port), database: server.database, user: server.user,
            passwordFile: server.passwordFile, poolSize: 2, statementTimeout: .seconds(2), connectTimeout: .seconds(1)))
        let names = ["pg-1", "pg-2", "mem-1"]
        let h = try PassHarness(accounts: names, drivers: [
            "pg-1": PostgresStorageDriver(store: store, account: "pg-1"), "pg-2": PostgresStorageDriver(store: store, account: "pg-2"),
        ])
        _ = try await h.memory.createKey(h.key, size: .bits2048)
        let first = await h.pass().report
        #expect(first.state == .ok && first.accounts.allSatisfy(\.outcome.isInSync), "\(first.accounts.map(\.outcome))")

        // The server goes away: the rotation reaches the in-memory account only.
        try server.stopServer()
        let v2 = try await h.memory.rotateKey(h.key)
        let down = await h.pass().report
        let byName = Dictionary(uniqueKeysWithValues: down.accounts.map { ($0.name, $0.outcome) })
        #expect(byName["mem-1"]?.code == .rebound)
        for name in ["pg-1", "pg-2"] {
            #expect(byName[name]?.code == .failed, "\(name): \(String(describing: byName[name]))")
            #expect(byName[name]?.reason == "storage.io", "\(name): \(String(describing: byName[name]))")
        }
        #expect(down.state == .degraded)
        #expect(!down.accounts.contains { $0.outcome.code == .suspended })

        // Back: the next pass rebinds the postgres accounts to the new version.
        try server.startServer()
        let back = await h.pass().report
        #expect(back.state == .ok, "\(back.accounts.map(\.outcome))")
        #expect(back.accounts.allSatisfy { $0.binding == v2.id }, "\(back.accounts.map(\.binding))")

        // Every connection of the pool is terminated by the server between passes (a failover, a
        // DBA's pg_terminate_backend): the pool reconnects and the pass after a rotation rebinds.
        let v3 = try await h.memory.rotateKey(h.key)
        try server.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '\(server.user)'")
        let dropped = await h.pass().report
        let retried = await dropped.state == .ok ? dropped : h.pass().report
        #expect(retried.state == .ok && retried.accounts.allSatisfy { $0.binding == v3.id }, "\(retried.accounts.map(\.outcome))")
        await store.shutdown()
    }
}
