import CMKCore
import Foundation
import CSQLiteConnection
import GRDB
import GRDBSQLite
import Glibc

/// Stores one account in one SQLite database (SPEC §4, §10 "sqlite"), through GRDB.
///
/// Schema (see `docs/storage.md`):
/// ```
/// keyring(id = 1, generation, json)          the single keyring row
/// objects(name, revision, size)              committed objects
/// object_chunks(revision, seq, bytes)        object bytes in rows of at most 1 MiB
/// staging(revision, name, touched)           writers that have not committed yet
/// ```
/// The database file is created with mode 0600 (SQLite gives its `-wal` and `-shm` files the
/// same mode) and refused if group or others can access it. It runs in WAL mode.
///
/// Every conditional change (keyring compare-and-swap, conditional object commit, conditional
/// delete) runs in one `BEGIN IMMEDIATE` transaction that takes SQLite's write lock first and
/// checks the condition inside, so two processes cannot both win. Writers stream chunks into
/// `object_chunks` under a fresh revision listed in `staging`; commit flips the `objects` row to
/// that revision and drops the old revision's chunks in one transaction.
///
/// **Why `DatabasePool`.** It is GRDB's WAL-mode handle: reads run concurrently with the
/// single writer, and `makeSnapshot()` gives each ``ObjectReader`` its own connection with an
/// open read transaction, so a reader keeps seeing the revision it opened (old chunks stay
/// visible to it) even after another writer replaces or deletes the object. A `DatabaseQueue`
/// would serialise readers behind writers and offers no such snapshot.
public final class SQLiteStorageDriver: StorageDriver {
    public let account: String
    /// The database file.
    public let path: String
    let busyTimeout: TimeInterval
    /// Where this driver's open database lives between operations (bounded per process).
    let handles: SQLiteHandles
    /// This instance's key in ``handles``: two drivers on one file keep separate pools.
    let handleKey: String
    /// The decoded keyring, kept while the database and its WAL stay as they were.
    let keyringCache = FileDerivedCache<Keyring?>()
    /// The keyring row read with the schema check when the driver opened, for the first
    /// ``readKeyring()`` (decoded and checked there) while the files stay as they were: the daemon
    /// opens its drivers in the first pass, which then opens each database once, not twice.
    let openedRow = FileDerivedCache<SQLiteSchema.KeyringRow?>()

    /// The open database, reopened if ``handles`` closed it to stay within its capacity. Out of
    /// descriptors, the other open databases are let go and the open is tried once more.
    var pool: DatabasePool {
        get throws {
            try handles.pool(handleKey) {
                try handles.relievingDescriptors("open database '\(path)'") { try Self.openPool(path, busyTimeout: busyTimeout) }
            }
        }
    }

    /// The size a WAL is cut back to once a checkpoint has copied it (`PRAGMA journal_size_limit`).
    static let walSizeLimit = 4 << 20

    /// The size of one `object_chunks` row, and the largest chunk a reader returns.
    static let chunkSize = 1 << 20

    /// Opens (creating if needed) the database at `path` for `account`.
    ///
    /// - Parameters:
    ///   - path: the database file; created with mode 0600, its parent directory as needed.
    ///   - account: the account name, which stored keyrings must carry.
    ///   - busyTimeout: how long a write waits for another connection's write lock (default 30 s).
    ///   - staleStagingAge: staged writes untouched this long are treated as left by a crash and
    ///     removed at open (default 600 s). Live writers touch their row with every chunk.
    /// - Throws: `.permissions` if the file is accessible to group or others; `.corrupt` if it is
    ///   not an SQLite database; `.io` for other failures.
    ///   - handles: the bounded set of open databases the driver borrows its connection from
    ///     (default: the process-wide ``SQLiteHandles/shared``).
    public init(path: String, account: String, busyTimeout: TimeInterval = 30, staleStagingAge: TimeInterval = 600,
                handles: SQLiteHandles = .shared) throws {
        self.account = account
        self.path = path
        self.busyTimeout = busyTimeout
        self.handles = handles
        handleKey = handles.uniqueKey(path)
        let what = "prepare database '\(path)'"
        try handles.relievingDescriptors(what) { try Self.preparePrivateFile(path) }
        let cutoff = Date().timeIntervalSince1970 - staleStagingAge
        // An existing database of this schema version with nothing left by a crash is only read
        // (a read-only connection, no pool): a restart over thousands of accounts opens no pool
        // until an account is written. On a read-only file system nothing is created or removed.
        let now = FileDerivedCache<Int>.now()
        let before = try keyringFingerprint()
        let (current, row) = try handles.relievingDescriptors(what) {
            try Self.database(what) { () throws -> (Bool, SQLiteSchema.KeyringRow?) in try reading { connection in
                let version = try SQLiteSchema.checkVersion(connection.userVersion())
                guard version == SQLiteSchema.version else { return (SystemFile.isOnReadOnlyFileSystem(path), nil) }
                let row = try? connection.keyringRow()  // a damaged row is reported by readKeyring()
                return (try SystemFile.isOnReadOnlyFileSystem(path) || !connection.hasStaleStaging(olderThan: cutoff), row)
            } }
        }
        guard !current else {
            if let row { openedRow.store(row, readBetween: before, and: try keyringFingerprint(), now: now) }
            return
        }
        try Self.database(what) {
            try pool.write { db in
                try SQLiteSchema.create(db)
                try SQLiteSchema.removeStaleStaging(db, olderThan: cutoff)
            }
        }
    }

    deinit { handles.close(handleKey) }

    /// Runs `body` on a read-only connection of its own (``SQLiteReadConnection/reading(_:busyTimeout:_:)``;
    /// counted in ``SQLiteHandles/readOpenings``).
    func reading<T>(_ body: (borrowing SQLiteReadConnection) throws -> T) throws -> T {
        handles.countReadOpening()
        return try SQLiteReadConnection.reading(path, busyTimeout: busyTimeout, body)
    }

    /// Opens the database in WAL mode with a busy timeout and a writer that syncs every commit.
    static func openPool(_ path: String, busyTimeout: TimeInterval) throws -> DatabasePool {
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        // A database on a read-only file system still serves reads (its WAL and shared-memory
        // files are kept between opens); writes are refused by ``writablePool()``.
        configuration.readonly = SystemFile.isOnReadOnlyFileSystem(path)
        configuration.label = "cmk-sqlite-storage"
        // No checkpoint when a connection closes: the WAL stays (frames and all) until a commit's
        // automatic checkpoint. Otherwise each close after a ``SQLiteHandles`` eviction would
        // copy the WAL into the database file again (SQLite rebuilds its WAL index on the next
        // open and counts every frame as not yet copied), or delete the WAL, which GRDB answers
        // with a write on the next open: every reopen would change the files and defeat the kept
        // keyring (``readKeyring()``). Durability is the WAL's, as before.
        configuration.prepareDatabase { db in
            var enabled: CInt = 0
            let code = cmk_sqlite_disable_checkpoint_on_close(db.sqliteConnection, &enabled)
            guard code == SQLITE_OK, enabled == 1 else {
                throw DatabaseError(resultCode: ResultCode(rawValue: code == SQLITE_OK ? SQLITE_ERROR : code),
                                    message: "cannot turn off the checkpoint on close (SQLite \(String(cString: sqlite3_libversion())))")
            }
            // Lookaside memory is a per-connection allocator for small objects, about 120 KiB
            // reserved at open; with dozens of databases of two connections open (and thousands
            // opened per pass) it would cost more than it saves.
            let lookaside = cmk_sqlite_disable_lookaside(db.sqliteConnection)
            guard lookaside == SQLITE_OK else {
                throw DatabaseError(resultCode: ResultCode(rawValue: lookaside), message: "cannot turn off lookaside memory")
            }
            // The WAL is kept between opens; after a checkpoint has copied it, it shrinks to this.
            try db.execute(sql: "PRAGMA journal_size_limit = \(Self.walSizeLimit)")
        }
        let pool: DatabasePool
        do {
            pool = try retryWhileTransient(for: busyTimeout, isTransient: { ($0 as? DatabaseError)?.resultCode == .SQLITE_BUSY }) {
                try DatabasePool(path: path, configuration: configuration)
            }
        } catch {
            throw Self.storageError(error, "open database '\(path)'")
        }
        if configuration.readonly { return pool }
        try Self.database("prepare database '\(path)'") {
            // GRDB sets `synchronous = NORMAL` for WAL, with which a power loss may undo the
            // last commits. A keyring compare-and-swap that reported success must never roll
            // back (SPEC §4), so the writer connection syncs the WAL on every commit.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        }
        return pool
    }

    /// Creates the file with mode 0600 if missing; refuses an existing file others can access.
    static func preparePrivateFile(_ path: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, !FileManager.default.fileExists(atPath: parent) {
            do throws(SystemFileError) {
                try SystemFile.makeDirectories(parent, mode: 0o700)
            } catch {
                throw StorageError(.misconfigured, "cannot create the directory '\(parent)' of database '\(path)'", underlying: error)
            }
        }
        // Never open and close an existing database file here: closing any descriptor of a file
        // drops every POSIX lock this process holds on it, including the locks of SQLite
        // connections that another driver instance has open on it. A file we create with
        // O_EXCL is brand new, so no connection can hold a lock on it yet.
        var info = stat()
        if fstatat(AT_FDCWD, path, &info, 0) != 0 {
            guard errno == ENOENT else { throw StorageError(.io, "cannot stat database file '\(path)': \(String(cString: strerror(errno)))") }
            let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 {
                fchmod(fd, 0o600)
                close(fd)
            } else if errno != EEXIST {
                let code = errno
                throw StorageError(code == EACCES || code == EPERM ? .permissions : .io, "cannot create database file '\(path)': \(String(cString: strerror(code)))",
                                   underlying: SystemFileError("open", path, code: code))
            }
            guard fstatat(AT_FDCWD, path, &info, 0) == 0 else { throw StorageError(.io, "cannot stat database file '\(path)'") }
        }
        if let problem = FileAccessRule.privateFile.problem(with: info, path: path, what: "database file") {
            guard problem.kind != .type else {
                throw StorageError(.misconfigured, "\(problem); an sqlite account location must be a database file")
            }
            throw StorageError(.permissions, problem.description)
        }
        // SQLite gives its WAL and shared-memory files the database's mode when it creates them,
        // but one made or changed by someone else would hand others the committed pages.
        for (suffix, what) in [("-wal", "write-ahead log"), ("-shm", "shared-memory file")] {
            var side = stat()
            guard fstatat(AT_FDCWD, path + suffix, &side, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if let problem = FileAccessRule.privateFile.problem(with: side, path: path + suffix, what: "database \(what)") {
                throw StorageError(problem.kind == .type ? .misconfigured : .permissions, problem.description)
            }
        }
    }

    /// Runs `body`, turning database errors into ``StorageError``s.
    static func database<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw storageError(error, what) }
    }

    static func database<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch { throw storageError(error, what) }
    }

    static func storageError(_ error: any Error, _ what: String) -> StorageError {
        if let error = error as? StorageError { return error }
        guard let error = error as? DatabaseError else { return StorageError(.io, "\(what) failed", underlying: error) }
        switch error.resultCode {
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return StorageError(.corrupt, "\(what) failed: the database is damaged or not an SQLite database", underlying: error)
        case .SQLITE_PERM, .SQLITE_READONLY, .SQLITE_AUTH:
            return StorageError(.permissions, "\(what) failed: access denied", underlying: error)
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return StorageError(.io, "\(what) failed: another connection held the database lock for too long", underlying: error)
        case .SQLITE_CANTOPEN where DescriptorLimit.isExhausted(needing: 16):
            return StorageError(.io, "\(what) failed: \(DescriptorExhaustion.remedy)", underlying: error)
        default:
            return StorageError(.io, "\(what) failed (SQLite extended code \(error.extendedResultCode.rawValue))", underlying: error)
        }
    }

    // MARK: Keyring

    /// The keyring. Kept between calls while the database file and its WAL are unchanged (a
    /// `stat` of each), so an idle pass over thousands of accounts opens no database: beyond the
    /// ``SQLiteHandles`` capacity every read would otherwise reopen one. When it is not kept (the
    /// first read after a start, or the files changed) it is read through a read-only connection
    /// of its own (``SQLiteReadConnection``), not a pool, and decoded and checked in full.
    public func readKeyring() async throws -> Keyring? {
        let now = FileDerivedCache<Keyring?>.now()
        let before = try keyringFingerprint()
        if let kept = keyringCache.value(for: before) { return kept }
        // The row read when the driver opened, while the files are as they were then (the
        // first read after a start); otherwise a read-only connection reads it now.
        let opened = openedRow.value(for: before)
        openedRow.invalidate()
        let row: SQLiteSchema.KeyringRow?
        if case .some(let openedRow) = opened {
            row = openedRow
        } else {
            let what = "read keyring from '\(path)'"
            row = try handles.relievingDescriptors(what) {
                try Self.database(what) { try reading { try $0.keyringRow() } }
            }
        }
        let keyring = try row.map(decode)
        keyringCache.store(keyring, readBetween: before, and: opened != nil ? before : try keyringFingerprint(), now: now)
        return keyring
    }

    /// What the keyring's bytes depend on: the database file and its WAL. Commits write the WAL
    /// and checkpoints write the database file, so either moves a modification time. A WAL of
    /// 0 bytes holds no frames, so it counts as no WAL. Opening and closing a database changes
    /// neither file (no checkpoint on close, ``openPool(_:busyTimeout:)``), with one exception
    /// for the WAL's change time: SQLite running as root `fchown`s the WAL to the database's
    /// owner at every open, so the WAL counts without its change time.
    func keyringFingerprint() throws -> [FileIdentity?] {
        do throws(SystemFileError) {
            let wal = try FileIdentity.of(path + "-wal", followLinks: false)
            return [try FileIdentity.of(path, followLinks: false), wal.flatMap { $0.size > 0 ? $0.ignoringChangeTime : nil }]
        } catch {
            throw StorageError(error)
        }
    }

    func decode(_ row: SQLiteSchema.KeyringRow) throws -> Keyring {
        let keyring = try KeyringJSON.decode(row.json, account: account, source: "keyring row of database '\(path)'")
        guard keyring.generation == row.generation else {
            throw StorageError(.corrupt, "keyring row of database '\(path)' says generation \(row.generation) but its JSON says \(keyring.generation)")
        }
        return keyring
    }

    public func replaceKeyring(_ keyring: Keyring, expectedGeneration: UInt64?) async throws {
        let json = try KeyringJSON.encodeChecked(keyring, account: account, expectedGeneration: expectedGeneration)
        guard let generation = Int64(exactly: keyring.generation) else {
            throw StorageError(.corrupt, "keyring generation \(keyring.generation) of account '\(account)' does not fit SQLite's integers")
        }
        let account = account
        keyringCache.invalidate()
        openedRow.invalidate()
        defer { keyringCache.invalidate() }
        let what = "replace keyring in '\(path)'"
        // Retrying after a descriptor shortage is safe: the generation is checked in the transaction.
        try await handles.relievingDescriptors(what) { try await Self.database(what) {
            try await writablePool().writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    let current = try SQLiteSchema.keyringRow(db).map(self.decode)?.generation
                    guard current == expectedGeneration else {
                        throw StorageError(.conflict, "keyring of account '\(account)' is at generation \(current.map(String.init) ?? "none"), not \(expectedGeneration.map(String.init) ?? "none")")
                    }
                    try db.execute(
                        sql: "INSERT INTO keyring(id, generation, json) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET generation = excluded.generation, json = excluded.json",
                        arguments: [generation, json])
                    CrashPoints.hit("sqlite.keyring.before-commit")
                    return .commit
                }
            }
            CrashPoints.hit("sqlite.keyring.after-commit")
        } }
    }
}
