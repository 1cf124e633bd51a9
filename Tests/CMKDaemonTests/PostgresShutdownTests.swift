import CMKTesting
import Foundation
import Testing

/// The daemon's PostgreSQL pool is part of its service lifecycle (issue 17): at SIGTERM the
/// ServiceGroup ends the sync service, then the pool (``StoragePoolsService``), so the pool closes
/// after the last statement and before the process exits. The test's database logs at `debug1`:
/// a connection that ends in the middle of a transaction is logged as "unexpected EOF on client
/// connection with an open transaction"; none of the daemon's server processes may log it.
/// (PostgresNIO's pool closes its sockets without the protocol's Terminate message, so each
/// connection still ends with the plain debug1 "unexpected EOF on client connection".)
@Suite("The daemon's PostgreSQL pool at SIGTERM", .serialized)
struct PostgresShutdownTests {
    @Test("a daemon with postgres accounts exits 0 promptly on SIGTERM, its connections closed cleanly (none left in pg_stat_activity)")
    func sigtermClosesThePool() async throws {
        let server = try PostgresServer.shared()
        let database = "shutdown_" + String(UInt32.random(in: .min ... .max), radix: 16)
        try server.psql("CREATE DATABASE \(database) OWNER \(server.user)")
        try server.psql("ALTER DATABASE \(database) SET log_min_messages = debug1")
        defer { _ = try? server.psql("DROP DATABASE IF EXISTS \(database) WITH (FORCE)") }
        let setup = try EmbeddedSetup()
        let accounts = (1...12).map { "  - {name: pg-\($0), kind: \(["file", "sql", "audit", "analytics", "secret-store"][$0 % 5]), driver: postgres}" }
        try """
            state-directory: \(setup.state)
            vault:
              provider: local
              local: {master-key-file: \(setup.state)/master.key, create: true}
            accounts:
            \(accounts.joined(separator: "\n"))
            postgres: {socket-directory: \(server.socketDirectory), port: \(server.port), database: \(database), user: \(server.user), password-file: \(server.passwordFile), pool-size: 4}
            sync: {interval: 1h, jitter: 0%, probe-interval: off, concurrency: 4}
            logging: {format: text}
            """.write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        let daemon = try DaemonProcess(arguments: ["run", "--config", setup.configPath], logPath: setup.root + "/daemon.log")
        try await eventually("the first pass over the postgres accounts", timeout: .seconds(60)) {
            let accounts = try setup.report()?["accounts"] as? [[String: Any]] ?? []
            return accounts.count == 12 && accounts.allSatisfy { ($0["outcome"] as? [String: Any])?["code"] as? String != "failed" }
        }
        func backends() throws -> [String] {
            try server.psql("SELECT pid FROM pg_stat_activity WHERE datname = '\(database)' AND application_name = 'cmk-syncer'")
                .split(separator: "\n").map(String.init)
        }
        let pids = try backends()
        #expect(!pids.isEmpty, "the daemon holds no connection after its pass; log:\n\(daemon.log.suffix(2000))")

        let clock = ContinuousClock()
        let signalled = clock.now
        daemon.signal(SIGTERM)
        let status = await daemon.wait(timeout: .seconds(20))
        let took = clock.now - signalled
        print("postgres shutdown: exit \(String(describing: status)) \(took) after SIGTERM, \(pids.count) connection(s) open before")
        #expect(status == 0, "exit status \(String(describing: status)); log:\n\(daemon.log.suffix(2000))")
        #expect(took < .seconds(10), "SIGTERM to exit took \(took)")
        #expect(daemon.log.contains("Closed the PostgreSQL connection pools."), "\(daemon.log.suffix(2000))")
        try await eventually("no cmk-syncer connection left on the server", timeout: .seconds(5)) { try backends().isEmpty }
        let log = (try? String(contentsOfFile: server.root + "/server.log", encoding: .utf8)) ?? ""
        let lines = log.split(separator: "\n").filter { line in pids.contains { line.contains("[\($0)]") } }
        #expect(!lines.isEmpty, "the server logged nothing of the daemon's connections at debug1")
        let cut = lines.filter { $0.contains("unexpected EOF on client connection with an open transaction") }
        #expect(cut.isEmpty, "connections ended inside a transaction: \(cut.joined(separator: "\n"))")
    }
}
