import Foundation

/// An append-only RFC 9162 (Certificate Transparency v2) Merkle tree over SHA-256, kept in a
/// ``MerkleHashStore``.
///
/// Roots at any size up to the current one, inclusion proofs and consistency proofs are
/// computed from the complete-subtree hashes the store keeps, in O(log n) store lookups: a
/// range of leaves that is not one complete subtree is always a suffix of the tree, which
/// splits into at most log₂ n complete subtrees (the binary digits of its size).
public struct MerkleTree<Store: MerkleHashStore> {
    /// The store holding the hashes.
    public private(set) var store: Store

    /// A tree over the hashes already in `store` (empty for a new store).
    public init(store: Store) {
        self.store = store
    }

    /// The number of leaves.
    public func size() throws -> UInt64 {
        try Self.storeCall { try store.leafCount() }
    }

    /// Appends a record: its leaf hash is `SHA-256(0x00 ‖ record)`. Returns its index.
    @discardableResult
    public mutating func append(record: some DataProtocol) throws -> UInt64 {
        try append(leafHash: .leaf(record))
    }

    /// Appends a leaf hash and the complete subtrees it completes. Returns the leaf's index.
    @discardableResult
    public mutating func append(leafHash: MerkleHash) throws -> UInt64 {
        let index = try size()
        var completing: [MerkleHash] = []
        var node = leafHash, position = index, level = 0
        while position & 1 == 1 {
            node = .node(try subtree(level: level, index: position - 1), node)
            completing.append(node)
            position >>= 1
            level += 1
        }
        try Self.storeCall { try store.append(leafHash: leafHash, completing: completing) }
        return index
    }

    /// The leaf hash at `index`.
    public func leafHash(at index: UInt64) throws -> MerkleHash {
        let size = try size()
        guard index < size else {
            throw TransparencyError(.outOfRange, "leaf index \(index) is beyond the tree of \(size) leaves")
        }
        return try subtree(level: 0, index: index)
    }

    /// The root hash of the tree at `size` leaves (any size up to the current one; the empty
    /// tree's root is `SHA-256("")`).
    public func rootHash(size: UInt64) throws -> MerkleHash {
        try checkSize(size)
        return size == 0 ? .emptyTree : try rangeHash(0, size)
    }

    /// The root hash at the current size.
    public func rootHash() throws -> MerkleHash {
        try rootHash(size: size())
    }

    /// The inclusion proof (RFC 9162 §2.1.3.1 `PATH(index, D[size])`) of leaf `index` in the tree
    /// at `size` leaves: the sibling hashes from the leaf up to the root.
    public func inclusionProof(index: UInt64, size: UInt64) throws -> [MerkleHash] {
        try checkSize(size)
        guard index < size else {
            throw TransparencyError(.outOfRange, "leaf index \(index) is not below the tree size \(size)")
        }
        var path: [MerkleHash] = []  // top-down, reversed at the end
        var low: UInt64 = 0, high = size, target = index
        while high - low > 1 {
            let split = Self.largestPowerOfTwo(below: high - low)
            if target < split {
                path.append(try rangeHash(low + split, high))
                high = low + split
            } else {
                path.append(try rangeHash(low, low + split))
                target -= split
                low += split
            }
        }
        return path.reversed()
    }

    /// The consistency proof (RFC 9162 §2.1.4.1 `PROOF(oldSize, D[newSize])`) that the tree at
    /// `oldSize` is a prefix of the tree at `newSize`. Empty when `oldSize` is 0 or equals
    /// `newSize`; when `oldSize` is a power of two its root is left out (the verifier has it).
    public func consistencyProof(from oldSize: UInt64, to newSize: UInt64) throws -> [MerkleHash] {
        try checkSize(newSize)
        guard oldSize <= newSize else {
            throw TransparencyError(.outOfRange, "old size \(oldSize) is larger than new size \(newSize)")
        }
        if oldSize == 0 || oldSize == newSize { return [] }
        var proof: [MerkleHash] = []  // top-down, reversed at the end
        var low: UInt64 = 0, high = newSize, remaining = oldSize, wholeTree = true
        while remaining != high - low {
            let split = Self.largestPowerOfTwo(below: high - low)
            if remaining <= split {
                proof.append(try rangeHash(low + split, high))
                high = low + split
            } else {
                proof.append(try rangeHash(low, low + split))
                remaining -= split
                low += split
                wholeTree = false
            }
        }
        if !wholeTree { proof.append(try rangeHash(low, high)) }
        return proof.reversed()
    }

    // MARK: Subtrees

    /// `MTH(D[low..<high])` for a range that is either one complete aligned subtree or reaches
    /// from a subtree boundary to the end of some tree size: the left part of each split is
    /// complete, so this costs one lookup per binary digit of `high - low`.
    private func rangeHash(_ low: UInt64, _ high: UInt64) throws -> MerkleHash {
        let count = high - low
        if count & (count - 1) == 0, low % count == 0 {
            let level = count.trailingZeroBitCount
            return try subtree(level: level, index: low >> level)
        }
        let split = Self.largestPowerOfTwo(below: count)
        return .node(try rangeHash(low, low + split), try rangeHash(low + split, high))
    }

    private func subtree(level: Int, index: UInt64) throws -> MerkleHash {
        if let hash = try Self.storeCall({ try store.subtreeHash(level: level, index: index) }) { return hash }
        guard level > 0 else {
            throw TransparencyError(.store, "the hash store has no leaf hash at index \(index)")
        }
        return .node(try subtree(level: level - 1, index: 2 * index), try subtree(level: level - 1, index: 2 * index + 1))
    }

    private func checkSize(_ requested: UInt64) throws {
        let size = try size()
        guard requested <= size else {
            throw TransparencyError(.outOfRange, "tree size \(requested) is beyond the current size \(size)")
        }
    }

    private static func storeCall<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as TransparencyError {
            throw error
        } catch {
            throw TransparencyError(.store, "the hash store failed", underlying: error)
        }
    }

    /// The largest power of two strictly below `count` (RFC 9162's split point `k`); `count` ≥ 2.
    static func largestPowerOfTwo(below count: UInt64) -> UInt64 {
        precondition(count >= 2, "a split needs at least two leaves")
        return UInt64(1) << (63 - (count - 1).leadingZeroBitCount)
    }
}

extension MerkleTree: Sendable where Store: Sendable {}

extension MerkleTree where Store == InMemoryMerkleHashStore {
    /// An empty tree in memory.
    public init() {
        self.init(store: InMemoryMerkleHashStore())
    }
}
