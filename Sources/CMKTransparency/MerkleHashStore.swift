/// Where a ``MerkleTree`` keeps its hashes: the leaf hashes in order and the hashes of the
/// complete subtrees ("full nodes") above them.
///
/// ## Layout
///
/// A node is named by `(level, index)`: level 0 holds the leaf hashes (`index` = leaf index);
/// the node at `(level, index)` is the root of the complete subtree over leaves
/// `index·2^level ..< (index+1)·2^level`, and exists once all those leaves are appended. Nodes
/// never change after they exist, because the log only appends. With `n` leaves, level `l` holds
/// `n >> l` nodes, so the store holds fewer than `2n` hashes in all. A SQLite table backs it
/// directly:
///
/// ```sql
/// CREATE TABLE tlog_node (
///     level INTEGER NOT NULL,   -- 0 = leaf hashes
///     idx   INTEGER NOT NULL,
///     hash  BLOB NOT NULL CHECK (length(hash) = 32),
///     PRIMARY KEY (level, idx)
/// ) WITHOUT ROWID;
/// ```
///
/// `leafCount()` is `SELECT count(*) … WHERE level = 0` (or the largest level-0 `idx` + 1, or a
/// counter kept in the same transaction); ``append(leafHash:completing:)`` is one transaction
/// inserting `(0, n, leafHash)` and `(l, n >> l, completing[l - 1])` for each completed level.
/// Appending leaf `n` completes one node for each trailing 1-bit of `n` (on average one), so
/// an append writes two rows on average.
///
/// A store may keep only some levels (for example every eighth, like the tiles of a tile-based
/// log) and return nil for the others; the tree then recomputes a missing node from its
/// children. Level 0 must always be kept.
public protocol MerkleHashStore {
    /// The number of leaves appended so far.
    func leafCount() throws -> UInt64

    /// The hash of the complete subtree at `(level, index)`, or nil when the store does not keep
    /// that level. The tree asks only for nodes that are complete at the current leaf count.
    func subtreeHash(level: Int, index: UInt64) throws -> MerkleHash?

    /// Appends the hash of leaf number `leafCount()` together with the hashes of the complete
    /// subtrees it completes: `completing[i]` is the node at level `i + 1`, index
    /// `leafIndex >> (i + 1)`. All of it lands, or none (one transaction).
    mutating func append(leafHash: MerkleHash, completing: [MerkleHash]) throws
}

/// A ``MerkleHashStore`` in memory: one array per level. About 64 bytes per leaf.
public struct InMemoryMerkleHashStore: MerkleHashStore, Sendable {
    private var levels: [[MerkleHash]] = [[]]

    /// An empty store.
    public init() {}

    public func leafCount() -> UInt64 { UInt64(levels[0].count) }

    public func subtreeHash(level: Int, index: UInt64) -> MerkleHash? {
        guard level >= 0, level < levels.count, index < UInt64(levels[level].count) else { return nil }
        return levels[level][Int(index)]
    }

    public mutating func append(leafHash: MerkleHash, completing: [MerkleHash]) {
        levels[0].append(leafHash)
        for (offset, hash) in completing.enumerated() {
            let level = offset + 1
            if level == levels.count { levels.append([]) }
            levels[level].append(hash)
        }
    }

    /// Reserves room for `leafCount` leaves and their nodes.
    public mutating func reserveCapacity(_ leafCount: Int) {
        var count = leafCount, level = 0
        while count > 0 {
            if level == levels.count { levels.append([]) }
            levels[level].reserveCapacity(count)
            count >>= 1
            level += 1
        }
    }
}
