import CMKCore
@testable import CMKPostgresStorage
import CMKTesting
import Foundation
import Testing

/// The postgres driver against a real PostgreSQL 15 server (``PostgresServer``, one per test process).
@Suite("PostgreSQL storage driver", .serialized)
struct PostgresStorageDriverTests {
    static func configuration(_ server: PostgresServer, poolSize: Int = 4, statementTimeout: Duration = .seconds(30),
                              tcp: Bool = false) -> PostgresStorageConfiguration {
        PostgresStorageConfiguration(
            endpoint: tcp ? .tcp(host: "127.0.0.1", port: server.port) : .unixSocket(directory: server.socketDirectory, port: server.port),
            database: server.database, user: server.user, passwordFile: server.passwordFile,
            poolSize: poolSize, statementTimeout: statementTimeout, connectTimeout: .seconds(5))
    }

    @Test("the postgres driver passes the conformance suite (a second pool is the second instance)")
    func conformance() async throws {
        let server = try PostgresServer.shared()
        let first = try PostgresStore(Self.configuration(server))
        let second = try PostgresStore(Self.configuration(server, tcp: true))
        let suite = StorageDriverConformance(
            makeDriver: { account in PostgresStorageDriver(store: first, account: account) },
            openSecondInstance: { account in PostgresStorageDriver(store: second, account: account) })
        let checks = try await suite.run()
        print("postgres driver: \(checks.count) conformance checks passed")
        #expect(checks == StorageDriverConformance.checkNames)
        await first.shutdown()
        await second.shutdown()
    }

    @Test("two daemons racing the same keyring generation: exactly one wins, the other gets storage.conflict")
    func casUnderConcurrentWriters() async throws {
        let server = try PostgresServer.shared()
        let stores = try (0..<2).map { _ in try PostgresStore(Self.configuration(server)) }
        let account = "cas-\(UInt32.random(in: .min ... .max))"
        try await PostgresStorageDriver(store: stores[0], account: account).replaceKeyring(sampleKeyring(account, generation: 1), expectedGeneration: nil)
        for round in 1...20 {
            let generation = UInt64(round)
            let outcomes = await withTaskGroup(of: String.self) { group in
                for store in stores {
                    group.addTask {
                        let driver = PostgresStorageDriver(store: store, account: account)
                        do {
                            try await driver.replaceKeyring(sampleKeyring(account, generation: generation + 1), expectedGeneration: generation)
                            return "won"
                        } catch let error as StorageError {
                            return error.codeName
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.sorted() == ["storage.conflict", "won"], "round \(round)")
            #expect(try await PostgresStorageDriver(store: stores[1], account: account).readKeyring()?.generation == generation + 1)
        }
        for store in stores { await store.shutdown() }
    }

    @Test("schema_migrations records versions 1 and 2 once; a database migrated by a newer cmk-syncer is refused")
    func migrations() async throws {
        let server = try PostgresServer.shared()
        let name = "migrations_\(UInt32.random(in: .min ... .max))"
        try server.psql("CREATE DATABASE \(name) OWNER \(server.user)")
        var configuration = Self.configuration(server)
        configuration.database = name
        for _ in 0..<2 {
            let store = try PostgresStore(configuration)
            _ = try await PostgresStorageDriver(store: store, account: "a").readKeyring()
            await store.shutdown()
        }
        #expect(try server.psql("SELECT version, description FROM schema_migrations ORDER BY version", database: name)
            == "1|keyrings, objects, object chunks, staged writes, retired revisions\n2|rebind leases shared by the daemons serving the same accounts")
        try server.psql("INSERT INTO schema_migrations(version, description) VALUES (99, 'from the future')", database: name)
        let store = try PostgresStore(configuration)
        let error = await storageError { _ = try await PostgresStorageDriver(store: store, account: "a").readKeyring() }
        #expect(error?.code == .misconfigured)
        #expect(error?.reason.contains("schema version 99, newer than this cmk-syncer's (2)") == true, "\(String(describing: error))")
        await store.shutdown()
    }

    @Test("a wrong password is storage.permissions naming the server, never the password")
    func wrongPassword() async throws {
        let server = try PostgresServer.shared()
        let root = try TemporaryDirectory()
        let wrong = root.path + "/wrong.password"
        FileManager.default.createFile(atPath: wrong, contents: Data("not-the-password\n".utf8), attributes: [.posixPermissions: 0o600])
        var configuration = Self.configuration(server)
        configuration.passwordFile = wrong
        let store = try PostgresStore(configuration)
        let error = await storageError { _ = try await PostgresStorageDriver(store: store, account: "a").readKeyring() }
        #expect(error?.code == .permissions, "\(String(describing: error))")
        #expect(error?.reason.contains("SQLSTATE 28P01") == true, "\(String(describing: error))")
        #expect(error.map { "\($0)".contains("not-the-password") } == false)
        await store.shutdown()
        chmod(wrong, 0o644)
        #expect(throws: StorageError.self) { try PostgresStore(configuration) }
    }

    @Test("a statement over statement-timeout is storage.io naming SQLSTATE 57014; a full pool is storage.io after the deadline")
    func statementTimeoutAndFullPool() async throws {
        let server = try PostgresServer.shared()
        let store = try PostgresStore(Self.configuration(server, poolSize: 1, statementTimeout: .seconds(1)))
        let slow = await storageError { try await store.withConnection("sleep") { connection in
            for try await _ in try await connection.query("SELECT pg_sleep(3)", logger: store.logger) {}
        } }
        #expect(slow?.code == .io && slow?.reason.contains("SQLSTATE 57014") == true, "\(String(describing: slow))")

        // The pool's one connection is busy (a statement under the timeout, held past the deadline by
        // a chain of them); a second operation waits for it and gives up at the deadline.
        let holder = Task { try? await store.withConnection("hold") { connection in
            for _ in 0..<16 { for try await _ in try await connection.query("SELECT pg_sleep(0.9)", logger: store.logger) {} }
        } }
        try await Task.sleep(for: .milliseconds(300))
        let clock = ContinuousClock()
        let began = clock.now
        let waited = await storageError { _ = try await PostgresStorageDriver(store: store, account: "pool").readKeyring() }
        #expect(waited?.code == .io && waited?.reason.contains("took longer than") == true, "\(String(describing: waited))")
        #expect(clock.now - began < .seconds(13), "the deadline is connect 5 s + statement 1 s + 5 s")
        _ = await holder.value
        await store.shutdown()
    }
}
