import CMKCore
import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Synchronization

/// One daemon's connection pool to one PostgreSQL database, shared by every account stored in it.
///
/// ``shared(_:)`` hands out one store per configuration per process, so a daemon with many
/// accounts in one database opens at most `pool-size` connections. The pool's background work
/// (`PostgresClient.run()`) starts with the first operation and stops at ``shutdown()`` (for the
/// daemon's shared stores: ``shutdownShared()``, called by its ServiceGroup at SIGTERM); the
/// schema is created or migrated once per store, before its first operation (``PostgresSchema``).
///
/// **Async all the way.** ``StorageDriver`` is async, so the driver awaits PostgresNIO directly:
/// no thread blocks on a future. Every operation runs under a deadline (connect timeout plus
/// statement timeout plus a margin): a server that is down, a full pool or a dropped connection
/// becomes a `.io` (transient) ``StorageError`` for that account instead of a wait without end.
public final class PostgresStore: Sendable {
    public let configuration: PostgresStorageConfiguration
    let client: PostgresClient
    /// For the migration: one connection outside the pool, so that a refused login or an
    /// unreachable server is reported at once with its reason instead of after the pool's retries.
    let direct: PostgresConnection.Configuration
    let logger: Logger
    /// Staged writes untouched this long are treated as left by a crash and removed.
    let staleStagingAge: Duration
    /// How long the chunks of a replaced or deleted revision stay for readers that opened it.
    let readerGrace: Duration

    private struct State {
        var runner: Task<Void, Never>?
        var migrated = false
        var lastSweep: ContinuousClock.Instant?
        var closed = false
    }
    private let state = Mutex(State())
    /// Serialises the first migration of this store (a second caller waits for the first).
    private let migration = AsyncGate()

    private static let registry = Mutex<[PostgresStorageConfiguration: PostgresStore]>([:])

    /// The process's store for `configuration`, created on first use.
    public static func shared(_ configuration: PostgresStorageConfiguration) throws -> PostgresStore {
        if let store = registry.withLock({ $0[configuration] }) { return store }
        let store = try PostgresStore(configuration)
        return registry.withLock { stores in
            if let existing = stores[configuration] { return existing }
            stores[configuration] = store
            return store
        }
    }

    /// Shuts down every shared store (the daemon's shutdown, tests) and returns how many there were.
    /// Each pool closes its connections with PostgreSQL's Terminate message.
    @discardableResult
    public static func shutdownShared() async -> Int {
        let stores = registry.withLock { stores in
            defer { stores = [:] }
            return Array(stores.values)
        }
        for store in stores { await store.shutdown() }
        return stores.count
    }

    /// A store with its own pool. Reads the password file now (errors name the file, never its contents).
    public init(_ configuration: PostgresStorageConfiguration, staleStagingAge: Duration = .seconds(600),
                readerGrace: Duration = .seconds(900), logger: Logger = Logger(label: "cmk-postgres-storage")) throws {
        self.configuration = configuration
        self.staleStagingAge = staleStagingAge
        self.readerGrace = readerGrace
        self.logger = logger
        let password = try configuration.readPassword()
        let startup = [("statement_timeout", String(Self.milliseconds(configuration.statementTimeout))), ("application_name", "cmk-syncer")]
        var client: PostgresClient.Configuration
        var direct: PostgresConnection.Configuration
        switch configuration.endpoint {
        case .unixSocket(let directory, let port):
            let path = directory + "/.s.PGSQL.\(port)"
            client = .init(unixSocketPath: path, username: configuration.user, password: password, database: configuration.database)
            direct = .init(unixSocketPath: path, username: configuration.user, password: password, database: configuration.database)
        case .tcp(let host, let port):
            let tls = try Self.tls(configuration)
            client = .init(host: host, port: port, username: configuration.user, password: password, database: configuration.database,
                           tls: tls.map { .require($0) } ?? .disable)
            direct = .init(host: host, port: port, username: configuration.user, password: password, database: configuration.database,
                           tls: try tls.map { .require(try NIOSSLContext(configuration: $0)) } ?? .disable)
            // No explicit TLS server name: PostgresNIO sends the host name as SNI and NIOSSL checks
            // the certificate against it; for an IP address (not allowed in SNI, NIOSSL refuses it)
            // NIOSSL checks the certificate's IP addresses against the peer's address instead.
        }
        client.options.maximumConnections = configuration.poolSize
        client.options.minimumConnections = 0
        client.options.connectTimeout = configuration.connectTimeout
        client.options.additionalStartupParameters = startup
        direct.options.connectTimeout = .milliseconds(Self.milliseconds(configuration.connectTimeout))
        direct.options.additionalStartupParameters = startup
        // PostgresNIO's own logging is off: its metadata may carry SQL text (never bound values).
        self.client = PostgresClient(configuration: client)
        self.direct = direct
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    /// The TLS configuration for `require` and `verify-full`; nil for `disable`.
    static func tls(_ configuration: PostgresStorageConfiguration) throws -> TLSConfiguration? {
        switch configuration.tls {
        case .disable:
            return nil
        case .require:
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            return tls
        case .verifyFull:
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .fullVerification
            if let caFile = configuration.caFile {
                guard FileManager.default.isReadableFile(atPath: caFile) else {
                    throw StorageError(.misconfigured, "PostgreSQL CA file \(caFile) cannot be read")
                }
                tls.trustRoots = .file(caFile)
            }
            return tls
        }
    }

    /// Stops the pool; later operations fail with `.io`.
    public func shutdown() async {
        let runner = state.withLock { state in
            defer { state.runner = nil; state.closed = true }
            return state.runner
        }
        runner?.cancel()
        await runner?.value
    }

    /// Starts the pool's background work once. The task is owned by the store and ended by ``shutdown()``.
    private func startIfNeeded() throws {
        try state.withLock { state in
            guard !state.closed else {
                throw StorageError(.io, "the PostgreSQL pool for \(configuration.serverDescription) is shut down")
            }
            guard state.runner == nil else { return }
            let client = client
            state.runner = Task { await client.run() }
        }
    }

    /// The longest one operation may take before it is reported as an outage.
    var deadline: Duration { configuration.connectTimeout + configuration.statementTimeout + .seconds(5) }

    /// Runs `body` on a pooled connection after the schema is ready, turning failures into ``StorageError``s.
    @discardableResult
    func withConnection<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try startIfNeeded()
        try await migrateIfNeeded()
        return try await PostgresErrors.mapping(what, server: configuration.serverDescription) {
            try await withDeadline(deadline, what) { [client] in
                try await client.withConnection { connection in try await body(connection) }
            }
        }
    }

    /// Runs `body` in one transaction (`BEGIN` … `COMMIT`, `ROLLBACK` when it throws) on a pooled connection.
    @discardableResult
    func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection(what) { [logger] connection in
            try await Self.transaction(on: connection, logger: logger, body)
        }
    }

    static func transaction<T: Sendable>(on connection: PostgresConnection, logger: Logger,
                                         _ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await connection.query("BEGIN", logger: logger)
        do {
            let value = try await body(connection)
            try await connection.query("COMMIT", logger: logger)
            return value
        } catch {
            // A rollback that fails leaves the server to end the transaction when the connection closes.
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// Creates or migrates the schema before the store's first operation.
    private func migrateIfNeeded() async throws {
        if state.withLock({ $0.migrated }) { return }
        try await migration.run { [self] in
            if state.withLock({ $0.migrated }) { return }
            try await PostgresErrors.mapping("migrate the schema", server: configuration.serverDescription) {
                try await withDeadline(deadline, "migrate the schema") { [direct, logger, staleStagingAge, readerGrace] in
                    let connection = try await PostgresConnection.connect(configuration: direct, id: 0, logger: logger)
                    do {
                        try await PostgresSchema.migrate(connection, logger: logger)
                        try await PostgresSchema.sweep(connection, logger: logger, staleStaging: staleStagingAge, readerGrace: readerGrace)
                    } catch {
                        try? await connection.close()
                        throw error
                    }
                    try? await connection.close()
                }
            }
            state.withLock { $0.migrated = true; $0.lastSweep = .now }
        }
    }

    /// Removes crashed writers' staged rows and expired retired revisions, at most once a minute per store.
    func sweepIfDue() async {
        let due = state.withLock { state in
            if let last = state.lastSweep, last.duration(to: .now) < .seconds(60) { return false }
            state.lastSweep = .now
            return true
        }
        guard due else { return }
        _ = try? await withConnection("sweep") { [logger, staleStagingAge, readerGrace] connection in
            try await PostgresSchema.sweep(connection, logger: logger, staleStaging: staleStagingAge, readerGrace: readerGrace)
        }
    }
}

/// Runs one async job at a time; later callers wait for the running one, then run theirs.
final class AsyncGate: Sendable {
    private let busy = Mutex<[CheckedContinuation<Void, Never>]?>(nil)

    func run(_ body: @Sendable () async throws -> Void) async throws {
        await acquire()
        defer { release() }
        try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let runNow = busy.withLock { waiters -> Bool in
                if waiters == nil { waiters = []; return true }
                waiters?.append(continuation)
                return false
            }
            if runNow { continuation.resume() }
        }
    }

    private func release() {
        let next = busy.withLock { waiters -> CheckedContinuation<Void, Never>? in
            guard var list = waiters, !list.isEmpty else { waiters = nil; return nil }
            let first = list.removeFirst()
            waiters = list
            return first
        }
        next?.resume()
    }
}

/// Runs `body`, or throws `.io` naming `what` when it takes longer than `limit` (the body is cancelled).
func withDeadline<T: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw StorageError(.io, "\(what) took longer than \(limit.components.seconds) s (server unreachable, pool exhausted or statement stuck)")
        }
        return value
    }
}
