import CMKTransparency
import Foundation
import GRDB

/// CMKTransparency's ``MerkleHashStore`` over the `nodes` table (docs/transparency.md), used
/// inside one transaction of ``VaultSecurityLog`` (a write to append, a read for proofs) so a
/// tree never sees half an append.
struct SQLiteNodeStore: MerkleHashStore {
    let db: Database

    func leafCount() throws -> UInt64 {
        UInt64(try Int64.fetchOne(db, sql: "SELECT coalesce(max(idx) + 1, 0) FROM nodes WHERE level = 0") ?? 0)
    }

    func subtreeHash(level: Int, index: UInt64) throws -> MerkleHash? {
        guard let bytes = try Data.fetchOne(db, sql: "SELECT hash FROM nodes WHERE level = ? AND idx = ?", arguments: [level, Int64(index)]) else {
            return nil
        }
        guard let hash = MerkleHash(bytes: bytes) else {
            throw VaultLogError(.corrupt, "the node (\(level), \(index)) of the security log is not 32 bytes")
        }
        return hash
    }

    mutating func append(leafHash: MerkleHash, completing: [MerkleHash]) throws {
        let index = try leafCount()
        try db.execute(sql: "INSERT INTO nodes (level, idx, hash) VALUES (0, ?, ?)", arguments: [Int64(index), Data(leafHash.bytes)])
        for (offset, hash) in completing.enumerated() {
            let level = offset + 1
            try db.execute(sql: "INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)", arguments: [level, Int64(index >> UInt64(level)), Data(hash.bytes)])
        }
    }
}
