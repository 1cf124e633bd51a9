import CMKCore
import Foundation
import GRDB

extension SQLiteStorageDriver {
    public func makeObjectWriter(_ name: ObjectName) async throws -> any ObjectWriter {
        let revision = ObjectRevision(Self.randomToken())
        try await Self.database("start writing object '\(name)' in '\(path)'") {
            try await writablePool().write { db in
                try db.execute(sql: "INSERT INTO staging(revision, name, touched) VALUES (?, ?, ?)",
                               arguments: [revision.value, name.value, Date().timeIntervalSince1970])
            }
        }
        // Chunks go to `object_chunks` under the staged revision; commit publishes it in one transaction.
        return ChunkedObjectWriter(
            account: account, name: name, revision: revision, chunkSize: Self.chunkSize,
            stage: { seq, bytes in try await self.stage(revision: revision, seq: seq, bytes: bytes) },
            publish: { size, condition in try await self.publish(name: name, revision: revision, size: size, condition: condition) },
            discard: { try await self.discard(revision: revision) })
    }

    // Reads open the pool's reader connection (and a snapshot's) on first use: out of
    // descriptors, the other open databases are let go and the read is tried once more, as for
    // the pool's writer. Since the cold open reads through a connection of its own, this is
    // often the first reader of a database in a pass.
    public func openObject(_ name: ObjectName) async throws -> any ObjectReader {
        let what = "open object '\(name)' in '\(path)'"
        return try await handles.relievingDescriptors(what) { try await Self.database(what) {
            let snapshot = try pool.makeSnapshot()
            guard let object = try await snapshot.read({ db in try SQLiteSchema.object(db, name) }) else {
                throw StorageError(.notFound, "object '\(name)' of account '\(account)' does not exist")
            }
            return SQLiteObjectReader(snapshot: snapshot, path: path, revision: object.revision)
        } }
    }

    public func listObjects() async throws -> [ObjectName] {
        let what = "list objects in '\(path)'"
        let names = try await handles.relievingDescriptors(what) { try await Self.database(what) {
            try await pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM objects") }
        } }
        return try ObjectName.stored(names, in: "database '\(path)'")
    }

    public func deleteObject(_ name: ObjectName, ifRevision revision: ObjectRevision?) async throws {
        let account = account
        try await Self.database("delete object '\(name)' in '\(path)'") {
            try await writablePool().writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    guard let current = try SQLiteSchema.object(db, name) else {
                        throw StorageError(.notFound, "object '\(name)' of account '\(account)' does not exist")
                    }
                    if let revision, revision != current.revision {
                        throw StorageError(.conflict, "object '\(name)' of account '\(account)' is at revision \(current.revision), not \(revision)")
                    }
                    try db.execute(sql: "DELETE FROM object_chunks WHERE revision = ?", arguments: [current.revision.value])
                    try db.execute(sql: "DELETE FROM objects WHERE name = ?", arguments: [name.value])
                    return .commit
                }
            }
        }
    }

    /// In one `BEGIN IMMEDIATE` transaction: checks `condition`, points `name` at the staged
    /// `revision`, drops the old revision's chunks and the staging row.
    func publish(name: ObjectName, revision: ObjectRevision, size: Int64, condition: WriteCondition) async throws {
        let account = account
        try await Self.database("commit object '\(name)' in '\(path)'") {
            try await writablePool().writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    guard try Bool.fetchOne(db, sql: "SELECT 1 FROM staging WHERE revision = ?", arguments: [revision.value]) != nil else {
                        throw StorageError(.io, "staged write \(revision) of object '\(name)' of account '\(account)' was removed as stale before it committed")
                    }
                    let current = try SQLiteSchema.object(db, name)
                    try condition.check(current: current?.revision, object: name, account: account)
                    if let current {
                        try db.execute(sql: "DELETE FROM object_chunks WHERE revision = ?", arguments: [current.revision.value])
                    }
                    try db.execute(
                        sql: "INSERT INTO objects(name, revision, size) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET revision = excluded.revision, size = excluded.size",
                        arguments: [name.value, revision.value, size])
                    try db.execute(sql: "DELETE FROM staging WHERE revision = ?", arguments: [revision.value])
                    CrashPoints.hit("sqlite.object.before-commit")
                    return .commit
                }
            }
            CrashPoints.hit("sqlite.object.after-commit")
        }
    }

    /// Appends one chunk of a staged write and marks the write as alive.
    func stage(revision: ObjectRevision, seq: Int, bytes: Data) async throws {
        try await Self.database("stage a chunk in '\(path)'") {
            try await writablePool().write { db in
                try db.execute(sql: "INSERT INTO object_chunks(revision, seq, bytes) VALUES (?, ?, ?)", arguments: [revision.value, seq, bytes])
                try db.execute(sql: "UPDATE staging SET touched = ? WHERE revision = ?", arguments: [Date().timeIntervalSince1970, revision.value])
            }
        }
    }

    /// Forgets a staged write and its chunks.
    func discard(revision: ObjectRevision) async throws {
        try await Self.database("discard a staged write in '\(path)'") {
            try await writablePool().write { db in
                try db.execute(sql: "DELETE FROM staging WHERE revision = ?", arguments: [revision.value])
                if try Bool.fetchOne(db, sql: "SELECT 1 FROM objects WHERE revision = ?", arguments: [revision.value]) == nil {
                    try db.execute(sql: "DELETE FROM object_chunks WHERE revision = ?", arguments: [revision.value])
                }
            }
        }
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode((0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }
}
