import CMKCore
import CMKTransparency
import Foundation
import GRDB
import Glibc
import Synchronization

/// The vault service's verifiable security log (docs/vault-service.md, "Security Logs API"):
/// `security-log.sqlite` in the state directory (0600, WAL, `synchronous = FULL`) with
///
/// - `records`: one row per record (`idx`, `time`, `operation`, `actor`, `role`, `address`, and
///   `leaf`, the record's canonical JSON — the Merkle leaf, served byte for byte);
/// - `nodes`: the RFC 9162 tree's leaf hashes and complete-subtree hashes (CMKTransparency's
///   ``MerkleHashStore`` layout, docs/transparency.md);
/// - `signed`: the size and root of the last checkpoint the service signed.
///
/// Appends arriving together are committed together (group commit, ``append(_:at:)``): one
/// transaction and one `fsync` for every record queued while the previous commit ran, each
/// caller resumed once its own record is durable. A transaction holds whole records (record,
/// leaf hash, completed nodes), so a `kill -9` at any point leaves the log before or after it,
/// and no caller is answered before its record is on disk. Checkpoints are signed lazily, when asked, and cached until
/// the size changes; the service never signs two checkpoints no consistency proof links: the
/// tree only grows, and opening a log whose tree is shorter than (or differs at) the last signed
/// checkpoint fails with ``VaultLogError/Code/rolledBack``.
public final class VaultSecurityLog: Sendable {
    /// The database's file name in the state directory.
    public static let fileName = "security-log.sqlite"
    static let schemaVersion = 1

    /// The database file.
    public let path: String
    /// The checkpoint origin, `<host>/cmk-vault/<tenant id>`.
    public let origin: String
    let signer: NoteSigner
    let pool: DatabasePool
    private let cache = Mutex<SignedCheckpoint?>(nil)
    /// Appends waiting for the committer, and whether it is running (``append(_:at:)``).
    private let queue = Mutex(AppendQueue())
    /// Where the committer runs: its transactions block on `fsync`, never a Swift concurrency thread.
    private let committer = DispatchQueue(label: "cmk-vault-log.committer")
    /// The most records one group commit holds; more wait for the next transaction.
    static let maximumBatch = 512
    private let commits = Mutex(0)

    /// How many append transactions committed since the log was opened (each is one `fsync`):
    /// fewer than the records appended when appends arrived together.
    public var appendTransactions: Int { commits.withLock { $0 } }

    /// The published key: what customers pin.
    public var verifier: NoteVerifier { signer.verifier }

    /// A checkpoint the service signed, with the time it signed it.
    public struct SignedCheckpoint: Sendable, Hashable {
        /// The signed note (c2sp.org/tlog-checkpoint body, one Ed25519 signature line).
        public var note: String
        public var size: UInt64
        public var rootHash: MerkleHash
        /// When the service first signed a checkpoint of this size (not part of the signed body).
        public var time: Date
    }

    /// Opens (or creates) the log in `stateDirectory` with the key `log-signing.key` (made on
    /// first open, named `origin`).
    ///
    /// - Throws: ``VaultLogError``: `.permissions` for a file others can reach, `.originChanged`,
    ///   `.rolledBack` when the stored tree is shorter than or differs from the last signed
    ///   checkpoint, `.corrupt` when records and leaves disagree or the schema is newer.
    public init(stateDirectory: String, origin: String) throws {
        path = stateDirectory + "/" + Self.fileName
        try Self.preparePrivateFile(path)
        signer = try LogSigningKey.loadOrCreate(stateDirectory: stateDirectory, origin: origin)
        self.origin = origin
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.label = "cmk-vault-log"
        let path = path
        pool = try Self.database("open the security log '\(path)'") {
            let pool = try retryWhileTransient(for: 10, isTransient: { ($0 as? DatabaseError)?.resultCode == .SQLITE_BUSY }) {
                try DatabasePool(path: path, configuration: configuration)
            }
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            return pool
        }
        let last = try write("prepare the security log") { db -> SignedCheckpoint? in
            try Self.migrate(db, path: path)
            return try Self.checkIntegrity(db, path: path)
        }
        if let last {
            cache.withLock { $0 = try? self.sign(size: last.size, root: last.rootHash, time: last.time) }
        }
    }

    // MARK: Appending

    /// An append waiting for its transaction.
    struct PendingAppend {
        var event: SecurityLogEvent
        var time: Date
        var continuation: CheckedContinuation<SecurityLogRecord, any Error>
    }

    struct AppendQueue {
        var pending: [PendingAppend] = []
        var committing = false
    }

    /// Appends a record for `event` at `time` and returns it once it is durable (committed with
    /// `synchronous = FULL`). Appends that arrive while a commit runs are committed together,
    /// in arrival order, in the next transaction; each gets its own index.
    ///
    /// - Throws: ``VaultLogError`` when the record could not be written (then it is not in the
    ///   log: a failed transaction leaves nothing behind).
    @discardableResult
    public func append(_ event: SecurityLogEvent, at time: Date = Date()) async throws -> SecurityLogRecord {
        try await withCheckedThrowingContinuation { continuation in
            let start = queue.withLock { state -> Bool in
                state.pending.append(PendingAppend(event: event, time: time, continuation: continuation))
                guard !state.committing else { return false }
                state.committing = true
                return true
            }
            if start { committer.async { self.commitQueued() } }
        }
    }

    /// The committer: takes everything queued (up to ``maximumBatch``), commits it in one
    /// transaction, resumes its callers, and goes on until the queue is empty.
    private func commitQueued() {
        while true {
            let batch = queue.withLock { state -> [PendingAppend] in
                let batch = Array(state.pending.prefix(Self.maximumBatch))
                state.pending.removeFirst(batch.count)
                if batch.isEmpty { state.committing = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                let records = try appendInOneTransaction(batch.map { ($0.event, $0.time) })
                for (pending, record) in zip(batch, records) { pending.continuation.resume(returning: record) }
            } catch {
                guard batch.count > 1 else {
                    batch[0].continuation.resume(throwing: error)
                    continue
                }
                // One record's failure must not fail the others: each on its own.
                for pending in batch {
                    do {
                        pending.continuation.resume(returning: try appendInOneTransaction([(pending.event, pending.time)])[0])
                    } catch {
                        pending.continuation.resume(throwing: error)
                    }
                }
            }
        }
    }

    /// Appends `events` in order in one transaction; their records.
    private func appendInOneTransaction(_ events: [(SecurityLogEvent, Date)]) throws -> [SecurityLogRecord] {
        let records = try write("append \(events.count == 1 ? "a record" : "\(events.count) records") to the security log") { db in
            var tree = MerkleTree(store: SQLiteNodeStore(db: db))
            var records: [SecurityLogRecord] = []
            records.reserveCapacity(events.count)
            for (event, time) in events {
                let index = try tree.size()
                let record = SecurityLogRecord(index: index, time: SecurityLogRecord.timeText(time), event: event)
                let leaf = try record.canonicalJSON()
                try db.execute(sql: """
                    INSERT INTO records (idx, time, operation, actor, role, address, leaf) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [Int64(index), record.time, record.operation, record.actor, record.role, record.address, leaf])
                guard try tree.append(record: leaf) == index else {
                    throw VaultLogError(.corrupt, "the security log's tree and records disagree at index \(index)")
                }
                records.append(record)
            }
            return records
        }
        commits.withLock { $0 += 1 }
        return records
    }

    // MARK: Reading

    /// The number of records (= the tree's size).
    public func size() throws -> UInt64 {
        try read("read the security log's size") { db in try SQLiteNodeStore(db: db).leafCount() }
    }

    /// Which records a page holds: filters (`from` inclusive, `to` exclusive, exact actor and
    /// operation), the first index to look at, and the page size.
    public struct Query: Sendable, Hashable {
        public var from: Date?
        public var to: Date?
        public var actor: String?
        public var operation: String?
        public var startIndex: UInt64
        public var limit: Int

        public init(from: Date? = nil, to: Date? = nil, actor: String? = nil, operation: String? = nil, startIndex: UInt64 = 0, limit: Int) {
            self.from = from
            self.to = to
            self.actor = actor
            self.operation = operation
            self.startIndex = startIndex
            self.limit = limit
        }
    }

    /// A page of records: each index with its leaf bytes, and the index to continue from when
    /// more records match.
    public struct Page: Sendable {
        public var leaves: [(index: UInt64, leaf: Data)]
        public var nextIndex: UInt64?
    }

    /// The records matching `query`, in index order.
    public func records(_ query: Query) throws -> Page {
        var conditions = ["idx >= ?"]
        var arguments: [any DatabaseValueConvertible] = [Int64(clamping: query.startIndex)]
        if let from = query.from { conditions.append("time >= ?"); arguments.append(SecurityLogRecord.timeText(from)) }
        if let to = query.to { conditions.append("time < ?"); arguments.append(SecurityLogRecord.timeText(to)) }
        if let actor = query.actor { conditions.append("actor = ?"); arguments.append(actor) }
        if let operation = query.operation { conditions.append("operation = ?"); arguments.append(operation) }
        arguments.append(max(1, query.limit) + 1)
        let sql = "SELECT idx, leaf FROM records WHERE \(conditions.joined(separator: " AND ")) ORDER BY idx LIMIT ?"
        let rows = try read("read security-log records") { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments))
        }
        var leaves = rows.map { (index: UInt64(bitPattern: $0["idx"] as Int64), leaf: $0["leaf"] as Data) }
        var next: UInt64?
        if leaves.count > max(1, query.limit) {
            leaves.removeLast()
            next = leaves.last.map { $0.index + 1 }
        }
        return Page(leaves: leaves, nextIndex: next)
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves.
    public func inclusionProof(index: UInt64, size: UInt64) throws -> [MerkleHash] {
        try read("make an inclusion proof") { db in
            let tree = MerkleTree(store: SQLiteNodeStore(db: db))
            let current = try tree.size()
            guard size <= current else { throw VaultLogError(.outOfRange, "size \(size) is beyond the log's \(current) records") }
            guard index < size else { throw VaultLogError(.outOfRange, "index \(index) is not below size \(size)") }
            return try tree.inclusionProof(index: index, size: size)
        }
    }

    /// The consistency proof from the tree of `from` leaves to the tree of `to` leaves.
    public func consistencyProof(from: UInt64, to: UInt64) throws -> [MerkleHash] {
        try read("make a consistency proof") { db in
            let tree = MerkleTree(store: SQLiteNodeStore(db: db))
            let current = try tree.size()
            guard to <= current else { throw VaultLogError(.outOfRange, "to \(to) is beyond the log's \(current) records") }
            guard from <= to else { throw VaultLogError(.outOfRange, "from \(from) is larger than to \(to): a log never shrinks") }
            return try tree.consistencyProof(from: from, to: to)
        }
    }

    /// The root hash at `size` leaves.
    public func rootHash(size: UInt64) throws -> MerkleHash {
        try read("compute a root") { db in try MerkleTree(store: SQLiteNodeStore(db: db)).rootHash(size: size) }
    }

    // MARK: Checkpoints

    /// The signed checkpoint of the current size: the cached one while the size is unchanged,
    /// otherwise a new one, recorded as the last signed size and root before it is returned.
    public func checkpoint(at now: Date = Date()) throws -> SignedCheckpoint {
        let size = try size()
        if let cached = cache.withLock({ $0 }), cached.size == size { return cached }
        let signed = try write("record a signed checkpoint") { db -> SignedCheckpoint in
            let tree = MerkleTree(store: SQLiteNodeStore(db: db))
            let size = try tree.size(), root = try tree.rootHash(size: size)
            if let last = try Self.lastSigned(db) {
                guard last.size <= size else {
                    throw VaultLogError(.rolledBack, "the tree has \(size) records but a checkpoint of \(last.size) was signed; refusing to sign a shorter one")
                }
                if last.size == size { return try self.sign(size: size, root: root, time: last.time) }
            }
            let millis = Int64((now.timeIntervalSince1970 * 1000).rounded())
            try db.execute(sql: "INSERT OR REPLACE INTO signed (id, size, root, time_ms) VALUES (1, ?, ?, ?)",
                           arguments: [Int64(size), Data(root.bytes), millis])
            return try self.sign(size: size, root: root, time: Self.date(millis: millis))
        }
        cache.withLock { current in
            if current == nil || current!.size < signed.size { current = signed }
        }
        return signed
    }

    private func sign(size: UInt64, root: MerkleHash, time: Date) throws -> SignedCheckpoint {
        let checkpoint = try Checkpoint(origin: origin, size: size, rootHash: root)
        let note = try checkpoint.signedNote(by: signer).serialized
        return SignedCheckpoint(note: note, size: size, rootHash: root, time: time)
    }

    // MARK: Schema and integrity

    static func migrate(_ db: Database, path: String) throws {
        let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
        guard version <= schemaVersion else {
            throw VaultLogError(.corrupt, "the security log '\(path)' has schema version \(version), newer than this build's \(schemaVersion); run the newer cmk-vault")
        }
        guard version < schemaVersion else { return }
        try db.execute(sql: """
            CREATE TABLE records (
                idx INTEGER PRIMARY KEY,
                time TEXT NOT NULL,
                operation TEXT NOT NULL,
                actor TEXT,
                role TEXT,
                address TEXT NOT NULL,
                leaf BLOB NOT NULL
            );
            CREATE INDEX records_time ON records (time);
            CREATE INDEX records_actor ON records (actor, idx);
            CREATE INDEX records_operation ON records (operation, idx);
            CREATE TABLE nodes (
                level INTEGER NOT NULL,
                idx INTEGER NOT NULL,
                hash BLOB NOT NULL CHECK (length(hash) = 32),
                PRIMARY KEY (level, idx)
            ) WITHOUT ROWID;
            CREATE TABLE signed (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                size INTEGER NOT NULL,
                root BLOB NOT NULL CHECK (length(root) = 32),
                time_ms INTEGER NOT NULL
            );
            PRAGMA user_version = \(schemaVersion);
            """)
    }

    /// Records and leaves must agree in number, and the tree must still hold the last signed
    /// checkpoint: at least its size, and the same root at that size.
    static func checkIntegrity(_ db: Database, path: String) throws -> SignedCheckpoint? {
        let tree = MerkleTree(store: SQLiteNodeStore(db: db))
        let leaves = try tree.size()
        let records = UInt64(try Int64.fetchOne(db, sql: "SELECT coalesce(max(idx) + 1, 0) FROM records") ?? 0)
        guard records == leaves else {
            throw VaultLogError(.corrupt, "the security log '\(path)' holds \(records) records but \(leaves) leaves; restore the state directory from a backup")
        }
        guard let last = try lastSigned(db) else { return nil }
        guard last.size <= leaves else {
            throw VaultLogError(.rolledBack, "the security log '\(path)' holds \(leaves) records but the service signed a checkpoint of \(last.size): it was truncated or restored from an older backup; customers holding that checkpoint would see a fork, so the service does not start (docs/vault-service.md, 'Security Logs API')")
        }
        guard try tree.rootHash(size: last.size) == last.rootHash else {
            throw VaultLogError(.rolledBack, "the security log '\(path)' no longer has the root the service signed at size \(last.size): its records were rewritten; the service does not start (docs/vault-service.md, 'Security Logs API')")
        }
        return last
    }

    static func lastSigned(_ db: Database) throws -> SignedCheckpoint? {
        guard let row = try Row.fetchOne(db, sql: "SELECT size, root, time_ms FROM signed WHERE id = 1") else { return nil }
        guard let root = MerkleHash(bytes: row["root"] as Data) else { throw VaultLogError(.corrupt, "the last signed root is not 32 bytes") }
        return SignedCheckpoint(note: "", size: UInt64(row["size"] as Int64), rootHash: root, time: date(millis: row["time_ms"]))
    }

    /// The signing time as stored (whole milliseconds), so a reopened log returns the same value.
    static func date(millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }

    // MARK: Database plumbing

    func write<T>(_ what: String, _ body: (Database) throws -> T) throws -> T {
        try Self.database(what + " in '\(path)'") {
            try pool.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        }
    }

    func read<T>(_ what: String, _ body: (Database) throws -> T) throws -> T {
        try Self.database(what + " in '\(path)'") { try pool.read(body) }
    }

    static func database<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as VaultLogError {
            throw error
        } catch let error as DatabaseError {
            switch error.resultCode {
            case .SQLITE_CORRUPT, .SQLITE_NOTADB:
                throw VaultLogError(.corrupt, "\(what) failed: the file is damaged or not an SQLite database; restore it from a backup")
            case .SQLITE_PERM, .SQLITE_READONLY, .SQLITE_AUTH, .SQLITE_CANTOPEN:
                throw VaultLogError(.permissions, "\(what) failed: access denied; run as the vault service's user")
            default:
                throw VaultLogError(.io, "\(what) failed (SQLite extended code \(error.extendedResultCode.rawValue))")
            }
        } catch let error as TransparencyError {
            throw VaultLogError(.outOfRange, "\(what) failed: \(error)")
        } catch {
            throw VaultLogError(.io, "\(what) failed: \(error)")
        }
    }

    /// Creates `path` 0600 if missing; refuses it (and its -wal/-shm) when others can reach it.
    static func preparePrivateFile(_ path: String) throws {
        do throws(SystemFileError) {
            try SystemFile.makeDirectories(SystemFile.directory(of: path), mode: 0o700)
            if try SystemFile.status(path, followLinks: false) == nil,
               let fd = try SystemFile.open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600, missingOK: false) {
                fchmod(fd, 0o600)
                close(fd)
            }
        } catch where error.code == EEXIST {
            // Created meanwhile: checked below.
        } catch {
            throw VaultLogError(.io, "cannot create the security log '\(path)': \(error.message); check the state directory")
        }
        for suffix in ["", "-wal", "-shm"] {
            let info: stat?
            do throws(SystemFileError) {
                info = try SystemFile.status(path + suffix, followLinks: false)
            } catch {
                throw VaultLogError(.io, "cannot stat '\(path + suffix)': \(error.message)")
            }
            guard let info else { continue }
            if let problem = FileAccessRule.privateFile.problem(with: info, path: path + suffix, what: "security log") {
                throw VaultLogError(.permissions, problem.description)
            }
        }
    }
}
