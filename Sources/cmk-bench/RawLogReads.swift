import CMKTransparency
import Foundation
import GRDBSQLite

/// The anchors of the security log's read figures (VaultBench): the same rows and the same
/// Merkle nodes read from the same `security-log.sqlite` through SQLite's C API alone — a
/// read-only connection of its own, no GRDB, no `Row`, no JSON, no tree logic. What a figure
/// costs beyond its anchor is the service's own work on top of SQLite's.
final class RawLogReads {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let db: OpaquePointer
    /// `SELECT hash FROM nodes WHERE level = ? AND idx = ?`, prepared once.
    private let node: OpaquePointer

    init(path: String) throws {
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READONLY, nil) == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw Failure(description: "cannot open the security log read-only for the raw anchors: \(message)")
        }
        db = handle
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, "SELECT hash FROM nodes WHERE level = ? AND idx = ?", -1, &statement, nil) == SQLITE_OK, let statement else {
            let message = String(cString: sqlite3_errmsg(db))
            sqlite3_close_v2(db)
            throw Failure(description: "cannot prepare the raw node lookup: \(message)")
        }
        node = statement
    }

    deinit {
        sqlite3_finalize(node)
        sqlite3_close_v2(db)
    }

    /// A page as `VaultSecurityLog.records` asks for it (`SELECT idx, leaf FROM records WHERE
    /// idx >= ? [AND operation = ?] ORDER BY idx LIMIT ?`, prepared per call like the service's
    /// query), each row stepped and its leaf's bytes summed; the number of rows.
    func page(start: UInt64, operation: String? = nil, limit: Int) throws -> Int {
        let sql = "SELECT idx, leaf FROM records WHERE idx >= ?" + (operation == nil ? "" : " AND operation = ?") + " ORDER BY idx LIMIT ?"
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else { throw failure("prepare a raw page") }
        defer { sqlite3_finalize(statement) }
        var column: Int32 = 1
        sqlite3_bind_int64(statement, column, Int64(start))
        if let operation {
            column += 1
            sqlite3_bind_text(statement, column, operation, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
        }
        sqlite3_bind_int64(statement, column + 1, Int64(limit + 1))
        var rows = 0, bytes = 0
        while true {
            let step = sqlite3_step(statement)
            if step == SQLITE_DONE { break }
            guard step == SQLITE_ROW else { throw failure("step a raw page") }
            bytes += Int(sqlite3_column_int64(statement, 0) & 1)
            if let blob = sqlite3_column_blob(statement, 1) {
                bytes += Int(blob.load(as: UInt8.self)) + Int(sqlite3_column_bytes(statement, 1))
            }
            rows += 1
        }
        guard bytes > 0 else { throw Failure(description: "a raw page read no leaf bytes") }
        return rows
    }

    /// The hashes of `nodes` (level, index), each a point lookup, all inside one read transaction
    /// as a proof's are; the bytes read. The statement is prepared once, or with `preparingEach`
    /// once per lookup (as a query given by its SQL text each time is).
    func lookups(_ nodes: [(level: Int, index: UInt64)], preparingEach: Bool = false) throws -> Int {
        guard sqlite3_exec(db, "BEGIN", nil, nil, nil) == SQLITE_OK else { throw failure("begin a raw read") }
        defer { sqlite3_exec(db, "COMMIT", nil, nil, nil) }
        var bytes = 0
        for (level, index) in nodes {
            var statement = node
            if preparingEach {
                var fresh: OpaquePointer?
                guard sqlite3_prepare_v2(db, "SELECT hash FROM nodes WHERE level = ? AND idx = ?", -1, &fresh, nil) == SQLITE_OK, let fresh else {
                    throw failure("prepare a raw node lookup")
                }
                statement = fresh
            }
            defer { if preparingEach { sqlite3_finalize(statement) } else { sqlite3_reset(statement) } }
            sqlite3_bind_int64(statement, 1, Int64(level))
            sqlite3_bind_int64(statement, 2, Int64(index))
            guard sqlite3_step(statement) == SQLITE_ROW else { throw failure("look up the node (\(level), \(index))") }
            bytes += Int(sqlite3_column_bytes(statement, 0))
        }
        return bytes
    }

    /// The hash at (level, index), or nil when the table has none.
    func hash(level: Int, index: UInt64) throws -> MerkleHash? {
        sqlite3_reset(node)
        defer { sqlite3_reset(node) }
        sqlite3_bind_int64(node, 1, Int64(level))
        sqlite3_bind_int64(node, 2, Int64(index))
        switch sqlite3_step(node) {
        case SQLITE_DONE: return nil
        case SQLITE_ROW:
            guard let blob = sqlite3_column_blob(node, 0) else { return nil }
            return MerkleHash(bytes: Data(bytes: blob, count: Int(sqlite3_column_bytes(node, 0))))
        default: throw failure("look up the node (\(level), \(index))")
        }
    }

    /// The nodes a proof reads: the tree over this file's `nodes` table, each lookup noted.
    /// `make` builds the proof; the proof it returns is compared with the service's.
    func nodesRead(size: UInt64, _ make: (MerkleTree<Recorder>) throws -> [MerkleHash]) throws -> (nodes: [(level: Int, index: UInt64)], proof: [MerkleHash]) {
        let recorder = Recorder(reads: self, size: size)
        let proof = try make(MerkleTree(store: recorder))
        return (recorder.seen.nodes, proof)
    }

    /// A read-only ``MerkleHashStore`` over the raw connection that notes which nodes were asked for.
    struct Recorder: MerkleHashStore {
        final class Seen { var nodes: [(level: Int, index: UInt64)] = [] }
        let reads: RawLogReads
        let size: UInt64
        let seen = Seen()

        func leafCount() -> UInt64 { size }

        func subtreeHash(level: Int, index: UInt64) throws -> MerkleHash? {
            seen.nodes.append((level, index))
            return try reads.hash(level: level, index: index)
        }

        mutating func append(leafHash: MerkleHash, completing: [MerkleHash]) throws {
            throw Failure(description: "the raw anchor store is read-only")
        }
    }

    private func failure(_ what: String) -> Failure {
        Failure(description: "cannot \(what) in the security log: \(String(cString: sqlite3_errmsg(db)))")
    }
}
