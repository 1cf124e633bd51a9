import CMKCore
import Foundation
import GRDB

/// The tables of ``SQLiteStorageDriver`` and the queries on them.
enum SQLiteSchema {
    /// The schema version kept in `PRAGMA user_version`; a database with a higher one is refused.
    static let version = 1

    static func create(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS keyring (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                generation INTEGER NOT NULL,
                json BLOB NOT NULL
            );
            CREATE TABLE IF NOT EXISTS objects (
                name TEXT PRIMARY KEY NOT NULL,
                revision TEXT NOT NULL UNIQUE,
                size INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS object_chunks (
                revision TEXT NOT NULL,
                seq INTEGER NOT NULL,
                bytes BLOB NOT NULL,
                PRIMARY KEY (revision, seq)
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS staging (
                revision TEXT PRIMARY KEY NOT NULL,
                name TEXT NOT NULL,
                touched REAL NOT NULL
            );
            """)
        // Written only when it differs: setting it rewrites page 1 even to the same value, and a
        // driver that opens an existing database must change no file (see ``SQLiteStorageDriver/readKeyring()``).
        let version = try checkVersion(db)
        if version != Self.version {
            try db.execute(sql: "PRAGMA user_version = \(Self.version)")
        }
    }

    /// The database's schema version; a database from a newer cmk-syncer is refused.
    static func checkVersion(_ db: Database) throws -> Int {
        try checkVersion(try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0)
    }

    /// `version` (`PRAGMA user_version`), refused if it is newer than this cmk-syncer's.
    static func checkVersion(_ version: Int) throws -> Int {
        guard version <= Self.version else {
            throw StorageError(.misconfigured, "the database has schema version \(version), newer than this cmk-syncer's (\(Self.version)); run the cmk-syncer that wrote it, or restore a backup")
        }
        return version
    }

    /// Removes staged writes nobody touched since `cutoff` (left by a crash) and chunks that belong
    /// to neither a committed object nor a staged write.
    @discardableResult
    static func removeStaleStaging(_ db: Database, olderThan cutoff: TimeInterval) throws -> Int {
        try db.execute(sql: "DELETE FROM staging WHERE touched < ?", arguments: [cutoff])
        let removed = db.changesCount
        try db.execute(sql: """
            DELETE FROM object_chunks
            WHERE revision NOT IN (SELECT revision FROM objects) AND revision NOT IN (SELECT revision FROM staging)
            """)
        return removed
    }

    struct KeyringRow: Sendable {
        var generation: UInt64
        var json: Data
    }

    static func keyringRow(_ db: Database) throws -> KeyringRow? {
        guard let row = try Row.fetchOne(db, sql: "SELECT generation, json FROM keyring WHERE id = 1") else { return nil }
        let generation: Int64 = row["generation"]
        let json: Data? = row["json"]
        guard generation >= 0, let json else {
            throw StorageError(.corrupt, "the keyring row holds generation \(generation) and \(row["json"] == nil ? "no JSON" : "JSON")")
        }
        return KeyringRow(generation: UInt64(generation), json: json)
    }

    /// The committed revision and size of `name`.
    static func object(_ db: Database, _ name: ObjectName) throws -> (revision: ObjectRevision, size: Int64)? {
        guard let row = try Row.fetchOne(db, sql: "SELECT revision, size FROM objects WHERE name = ?", arguments: [name.value]) else { return nil }
        return (ObjectRevision(row["revision"]), row["size"])
    }
}
