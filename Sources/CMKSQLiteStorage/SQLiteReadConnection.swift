import CMKCore
import CSQLiteConnection
import Foundation
import GRDB
import GRDBSQLite

/// A short-lived read-only connection through SQLite's own API, for the reads that need no GRDB
/// pool: the schema check when a driver opens and the keyring read of a pass that finds the kept
/// keyring stale (the first pass after a start reads every account's).
///
/// A `DatabasePool` costs about 0.8 ms to open and close: a writer and a reader connection, each
/// on a dispatch queue of its own, GRDB's PRAGMAs and schema checks, and a thread hop per access.
/// This connection is one `sqlite3_open_v2(SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX)`, one or
/// two statements on the calling thread and a close. It writes nothing: read-only, no lookaside,
/// and no checkpoint when it closes (as the pool's connections, ``SQLiteStorageDriver/openPool(_:busyTimeout:)``),
/// so a driver's kept keyring stays valid across it. SQLite shares the file's locks with the pools
/// of this process (one unix VFS), so closing it never drops another connection's locks.
///
/// Failures are GRDB `DatabaseError`s with SQLite's extended result code, so that
/// ``SQLiteStorageDriver/storageError(_:_:)`` and ``SQLiteHandles`` treat them as the pool's.
struct SQLiteReadConnection: ~Copyable {
    private let db: OpaquePointer
    private let path: String

    /// Opens `path` for reading; never creates it. `busyTimeout` bounds a wait for another
    /// connection's lock (a WAL recovery in progress).
    ///
    /// The connection maps the `-shm` file read-only (`readonly_shm=1`). When no other connection
    /// has the database open, SQLite then reads the WAL's committed frames into private memory,
    /// checksums checked as in a recovery, instead of truncating the `-shm` file and rebuilding
    /// its index there (an `ftruncate` and eight `pwrite`s per database, ~0.4 ms of I/O wait on
    /// ext4 under load: the largest cost of a cold start). When another connection has it open
    /// (its index is live), the connection reads that index as any reader does. Without a `-shm`
    /// file (a database and WAL copied without it) SQLite cannot open it read-only
    /// (`SQLITE_CANTOPEN` at the first statement): ``reading(_:busyTimeout:_:)`` then opens a plain
    /// read-only connection, which creates the file and builds the index, as before.
    init(path: String, busyTimeout: TimeInterval, readOnlySharedMemory: Bool = true) throws {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | (readOnlySharedMemory ? SQLITE_OPEN_URI : 0)
        let code = sqlite3_open_v2(readOnlySharedMemory ? Self.uri(path, "readonly_shm=1") : path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let error = Self.error(handle, code)
            sqlite3_close_v2(handle)
            throw error
        }
        do {
            try Self.configure(handle, busyTimeout: busyTimeout)
        } catch {
            sqlite3_close_v2(handle)
            throw error
        }
        db = handle
        self.path = path
    }

    /// Runs `body` on a connection that maps the `-shm` file read-only, or, if SQLite cannot
    /// open the database that way (no `-shm` file), on a plain read-only connection.
    static func reading<T>(_ path: String, busyTimeout: TimeInterval, _ body: (borrowing SQLiteReadConnection) throws -> T) throws -> T {
        do {
            return try body(SQLiteReadConnection(path: path, busyTimeout: busyTimeout))
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CANTOPEN {
            return try body(SQLiteReadConnection(path: path, busyTimeout: busyTimeout, readOnlySharedMemory: false))
        }
    }

    /// `file:` URI of `path` with `query` (RFC 3986: every byte but unreserved ones and `/`
    /// percent-encoded, so `?`, `#` and `%` in a path stay part of it).
    static func uri(_ path: String, _ query: String) -> String {
        var encoded = path.hasPrefix("/") ? "file://" : "file:"
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "/"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let digits = Array("0123456789ABCDEF".unicodeScalars)
                encoded.unicodeScalars.append("%")
                encoded.unicodeScalars.append(digits[Int(byte >> 4)])
                encoded.unicodeScalars.append(digits[Int(byte & 0x0F)])
            }
        }
        return encoded + "?" + query
    }

    /// Extended result codes, no checkpoint on close, no lookaside, the busy timeout.
    private static func configure(_ handle: OpaquePointer, busyTimeout: TimeInterval) throws {
        sqlite3_extended_result_codes(handle, 1)
        var enabled: CInt = 0
        let noCheckpoint = cmk_sqlite_disable_checkpoint_on_close(handle, &enabled)
        guard noCheckpoint == SQLITE_OK, enabled == 1 else {
            throw DatabaseError(resultCode: ResultCode(rawValue: noCheckpoint == SQLITE_OK ? SQLITE_ERROR : noCheckpoint),
                                message: "cannot turn off the checkpoint on close")
        }
        let lookaside = cmk_sqlite_disable_lookaside(handle)
        guard lookaside == SQLITE_OK else { throw DatabaseError(resultCode: ResultCode(rawValue: lookaside), message: "cannot turn off lookaside memory") }
        sqlite3_busy_timeout(handle, CInt(min(max(busyTimeout, 0), 3_600) * 1_000))
    }

    deinit { sqlite3_close_v2(db) }

    /// `PRAGMA user_version`: the schema version (0 for a database nobody created tables in).
    func userVersion() throws -> Int {
        try query("PRAGMA user_version") { statement in Int(sqlite3_column_int64(statement, 0)) } ?? 0
    }

    /// The keyring row, checked as ``SQLiteSchema/keyringRow(_:)`` checks it.
    func keyringRow() throws -> SQLiteSchema.KeyringRow? {
        try query("SELECT generation, json FROM keyring WHERE id = 1") { statement in
            let generation = sqlite3_column_int64(statement, 0)
            let isInteger = sqlite3_column_type(statement, 0) == SQLITE_INTEGER
            let hasJSON = sqlite3_column_type(statement, 1) != SQLITE_NULL
            guard isInteger, generation >= 0, hasJSON else {
                throw StorageError(.corrupt, "the keyring row of database '\(path)' holds generation \(isInteger ? String(generation) : "that is not an integer") and \(hasJSON ? "JSON" : "no JSON")")
            }
            let bytes = sqlite3_column_blob(statement, 1)
            let count = Int(sqlite3_column_bytes(statement, 1))
            return SQLiteSchema.KeyringRow(generation: UInt64(generation), json: bytes.map { Data(bytes: $0, count: count) } ?? Data())
        }
    }

    /// Whether ``SQLiteSchema/removeStaleStaging(_:olderThan:)`` would remove anything: a staged
    /// write untouched since `cutoff`, or chunks of neither a committed object nor a staged write.
    func hasStaleStaging(olderThan cutoff: TimeInterval) throws -> Bool {
        try query("""
            SELECT EXISTS (SELECT 1 FROM staging WHERE touched < ?)
                OR EXISTS (SELECT 1 FROM object_chunks
                           WHERE revision NOT IN (SELECT revision FROM objects) AND revision NOT IN (SELECT revision FROM staging))
            """, binding: cutoff) { statement in sqlite3_column_int64(statement, 0) != 0 } ?? false
    }

    /// Runs `sql` (with `value` bound to its parameter); `row` reads its first row (nil when it has none).
    private func query<T>(_ sql: String, binding value: Double? = nil, row: (OpaquePointer) throws -> T) throws -> T? {
        var statement: OpaquePointer?
        let prepared = sqlite3_prepare_v2(db, sql, -1, &statement, nil)
        defer { sqlite3_finalize(statement) }
        guard prepared == SQLITE_OK, let statement else { throw Self.error(db, prepared, sql: sql) }
        if let value {
            let bound = sqlite3_bind_double(statement, 1, value)
            guard bound == SQLITE_OK else { throw Self.error(db, bound, sql: sql) }
        }
        switch sqlite3_step(statement) {
        case SQLITE_ROW: return try row(statement)
        case SQLITE_DONE: return nil
        case let code: throw Self.error(db, code, sql: sql)
        }
    }

    private static func error(_ db: OpaquePointer?, _ code: CInt, sql: String? = nil) -> DatabaseError {
        let extended = db.map { sqlite3_extended_errcode($0) } ?? code
        let message = db.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(code))
        // The extended code when it refines `code` (SQLITE_CANTOPEN_ISDIR...), else `code` itself.
        let result = extended & 0xff == code & 0xff ? extended : code
        return DatabaseError(resultCode: ResultCode(rawValue: result), message: message, sql: sql)
    }
}
