import CMKCore
import Foundation
import PostgresNIO

extension PostgresStorageDriver {
    public func makeObjectWriter(_ name: ObjectName) async throws -> any ObjectWriter {
        let revision = ObjectRevision(Self.randomToken())
        let account = account
        try await store.withConnection("start writing object '\(name)' of account '\(account)'") { [logger = store.logger] connection in
            try await connection.query(
                "INSERT INTO cmk_staging(revision, account, name) VALUES (\(revision.value), \(account), \(name.value))", logger: logger)
        }
        // Chunks go to `cmk_object_chunks` under the staged revision; commit publishes it in one transaction.
        return ChunkedObjectWriter(
            account: account, name: name, revision: revision, chunkSize: Self.chunkSize,
            stage: { seq, bytes in try await self.stage(revision: revision, seq: seq, bytes: bytes) },
            publish: { size, condition in try await self.publish(name: name, revision: revision, size: size, condition: condition) },
            discard: { try await self.discard(revision: revision) })
    }

    public func openObject(_ name: ObjectName) async throws -> any ObjectReader {
        let account = account
        let found = try await store.withConnection("open object '\(name)' of account '\(account)'") { [logger = store.logger] connection in
            var found: (String, Int64)?
            for try await row in try await connection.query(
                "SELECT revision, size FROM cmk_objects WHERE account = \(account) AND name = \(name.value)", logger: logger).decode((String, Int64).self) {
                found = row
            }
            return found
        }
        guard let (revision, size) = found else {
            throw StorageError(.notFound, "object '\(name)' of account '\(account)' does not exist")
        }
        return PostgresObjectReader(driver: self, name: name, revision: ObjectRevision(revision), size: size)
    }

    public func listObjects() async throws -> [ObjectName] {
        let account = account
        let names = try await store.withConnection("list the objects of account '\(account)'") { [logger = store.logger] connection in
            var names: [String] = []
            for try await name in try await connection.query(
                "SELECT name FROM cmk_objects WHERE account = \(account)", logger: logger).decode(String.self) {
                names.append(name)
            }
            return names
        }
        return try ObjectName.stored(names, in: "\(server) (account '\(account)')")
    }

    public func deleteObject(_ name: ObjectName, ifRevision revision: ObjectRevision?) async throws {
        let account = account
        try await store.transaction("delete object '\(name)' of account '\(account)'") { [logger = store.logger] connection in
            try await Self.lockObject(connection, account: account, name: name, logger: logger)
            guard let current = try await Self.currentRevision(connection, account: account, name: name, logger: logger) else {
                throw StorageError(.notFound, "object '\(name)' of account '\(account)' does not exist")
            }
            if let revision, revision != current {
                throw StorageError(.conflict, "object '\(name)' of account '\(account)' is at revision \(current), not \(revision)")
            }
            try await connection.query("DELETE FROM cmk_objects WHERE account = \(account) AND name = \(name.value)", logger: logger)
            try await Self.retire(connection, account: account, revision: current, logger: logger)
        }
    }

    /// In one transaction: takes the object's lock, checks `condition`, points `name` at the staged
    /// `revision`, retires the old revision (its chunks stay for open readers) and drops the staging row.
    func publish(name: ObjectName, revision: ObjectRevision, size: Int64, condition: WriteCondition) async throws {
        let account = account
        try await store.transaction("commit object '\(name)' of account '\(account)'") { [logger = store.logger] connection in
            try await Self.lockObject(connection, account: account, name: name, logger: logger)
            var staged = 0
            for try await _ in try await connection.query(
                "DELETE FROM cmk_staging WHERE revision = \(revision.value) RETURNING revision", logger: logger) { staged += 1 }
            guard staged == 1 else {
                throw StorageError(.io, "staged write \(revision) of object '\(name)' of account '\(account)' was removed as stale before it committed")
            }
            let current = try await Self.currentRevision(connection, account: account, name: name, logger: logger)
            try condition.check(current: current, object: name, account: account)
            try await connection.query("""
                INSERT INTO cmk_objects(account, name, revision, size) VALUES (\(account), \(name.value), \(revision.value), \(size))
                ON CONFLICT (account, name) DO UPDATE SET revision = excluded.revision, size = excluded.size
                """, logger: logger)
            if let current { try await Self.retire(connection, account: account, revision: current, logger: logger) }
            CrashPoints.hit("postgres.object.before-commit")
        }
        CrashPoints.hit("postgres.object.after-commit")
        await store.sweepIfDue()
    }

    /// Appends one chunk of a staged write and marks the write as alive.
    func stage(revision: ObjectRevision, seq: Int, bytes: Data) async throws {
        let account = account
        try await store.withConnection("stage a chunk for account '\(account)'") { [logger = store.logger] connection in
            try await connection.query(
                "INSERT INTO cmk_object_chunks(revision, seq, bytes) VALUES (\(revision.value), \(Int32(seq)), \(bytes))", logger: logger)
            try await connection.query("UPDATE cmk_staging SET touched = now() WHERE revision = \(revision.value)", logger: logger)
        }
        CrashPoints.hit("postgres.object.chunk-staged")
    }

    /// Forgets a staged write and its chunks (unless a commit made it the object after all).
    func discard(revision: ObjectRevision) async throws {
        let account = account
        try await store.transaction("discard a staged write of account '\(account)'") { [logger = store.logger] connection in
            try await connection.query("DELETE FROM cmk_staging WHERE revision = \(revision.value)", logger: logger)
            try await connection.query("""
                DELETE FROM cmk_object_chunks WHERE revision = \(revision.value)
                AND NOT EXISTS (SELECT 1 FROM cmk_objects WHERE revision = \(revision.value))
                """, logger: logger)
        }
    }

    /// One chunk of a revision, or nil when the row does not exist.
    func chunk(revision: ObjectRevision, seq: Int) async throws -> Data? {
        try await store.withConnection("read object revision \(revision) of account '\(account)'") { [logger = store.logger] connection in
            var bytes: Data?
            for try await chunk in try await connection.query(
                "SELECT bytes FROM cmk_object_chunks WHERE revision = \(revision.value) AND seq = \(Int32(seq))", logger: logger).decode(Data.self) {
                bytes = chunk
            }
            return bytes
        }
    }

    /// Serialises conditional changes of one object across connections and daemons for the
    /// transaction's length (READ COMMITTED then sees the other's committed row).
    static func lockObject(_ connection: PostgresConnection, account: String, name: ObjectName, logger: Logger) async throws {
        let key = account + "/" + name.value  // unambiguous: account names hold no '/'

        // A SELECT's error (a statement timeout while waiting for the lock) arrives with its rows: consume them.
        for try await _ in try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(key), 0))", logger: logger) {}
    }

    static func currentRevision(_ connection: PostgresConnection, account: String, name: ObjectName, logger: Logger) async throws -> ObjectRevision? {
        var current: ObjectRevision?
        for try await revision in try await connection.query(
            "SELECT revision FROM cmk_objects WHERE account = \(account) AND name = \(name.value)", logger: logger).decode(String.self) {
            current = ObjectRevision(revision)
        }
        return current
    }

    /// Keeps a replaced or deleted revision's chunks for readers that opened it; the sweep drops them later.
    static func retire(_ connection: PostgresConnection, account: String, revision: ObjectRevision, logger: Logger) async throws {
        try await connection.query("INSERT INTO cmk_retired(revision, account) VALUES (\(revision.value), \(account)) ON CONFLICT DO NOTHING", logger: logger)
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode((0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }
}
