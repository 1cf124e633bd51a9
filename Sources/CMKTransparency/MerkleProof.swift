/// Verification of RFC 9162 inclusion and consistency proofs, for anyone who holds a root (a
/// verified ``Checkpoint``) and not the tree.
public enum MerkleProof {
    /// Checks that `leafHash` is leaf `index` of the tree of `size` leaves whose root is `root`
    /// (RFC 9162 §2.1.3.2). Throws ``TransparencyError/Code/malformedProof`` when `index` ≥
    /// `size` or the proof has too many or too few hashes, and
    /// ``TransparencyError/Code/proofMismatch`` when the walk does not end at `root`.
    public static func verifyInclusion(leafHash: MerkleHash, index: UInt64, size: UInt64, proof: [MerkleHash], root: MerkleHash) throws {
        guard index < size else {
            throw TransparencyError(.malformedProof, "leaf index \(index) is not below the tree size \(size)")
        }
        var fn = index, sn = size - 1, hash = leafHash
        for sibling in proof {
            guard sn != 0 else {
                throw TransparencyError(.malformedProof, "the inclusion proof for leaf \(index) of \(size) has more than the \(inclusionLength(index: index, size: size)) hashes it needs")
            }
            if fn & 1 == 1 || fn == sn {
                hash = .node(sibling, hash)
                skipRightBorder(&fn, &sn)
            } else {
                hash = .node(hash, sibling)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else {
            throw TransparencyError(.malformedProof, "the inclusion proof for leaf \(index) of \(size) has \(proof.count) hashes; it needs \(inclusionLength(index: index, size: size))")
        }
        guard hash == root else {
            throw TransparencyError(.proofMismatch, "the inclusion proof for leaf \(index) of \(size) does not lead to the root")
        }
    }

    /// Checks that the tree of `oldSize` leaves with root `oldRoot` is a prefix of the tree of
    /// `newSize` leaves with root `newRoot` (RFC 9162 §2.1.4.2).
    ///
    /// Sizes equal: the proof must be empty and the roots equal. Old size 0: the proof must be
    /// empty and `oldRoot` the empty tree's root (every tree extends the empty tree). Otherwise the
    /// proof must hold exactly the hashes RFC 9162 §2.1.4.1 produces and both walks must end at
    /// the given roots.
    public static func verifyConsistency(oldSize: UInt64, oldRoot: MerkleHash, newSize: UInt64, newRoot: MerkleHash, proof: [MerkleHash]) throws {
        guard oldSize <= newSize else {
            throw TransparencyError(.malformedProof, "old size \(oldSize) is larger than new size \(newSize): a log never shrinks")
        }
        if oldSize == newSize || oldSize == 0 {
            guard proof.isEmpty else {
                throw TransparencyError(.malformedProof, "a consistency proof from size \(oldSize) to \(newSize) must be empty; this one has \(proof.count) hashes")
            }
            if oldSize == 0 {
                guard oldRoot == .emptyTree else {
                    throw TransparencyError(.proofMismatch, "the root given for size 0 is not the empty tree's root")
                }
            }
            guard oldSize != newSize || oldRoot == newRoot else {
                throw TransparencyError(.proofMismatch, "two different roots for the same size \(newSize): the log forked")
            }
            return
        }
        guard !proof.isEmpty else {
            throw TransparencyError(.malformedProof, "the consistency proof from \(oldSize) to \(newSize) is empty")
        }
        var path = proof[...]
        if oldSize & (oldSize - 1) == 0 { path = [oldRoot] + path }
        var fn = oldSize - 1, sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var oldHash = path.removeFirst(), newHash = oldHash
        for hash in path {
            guard sn != 0 else {
                throw TransparencyError(.malformedProof, "the consistency proof from \(oldSize) to \(newSize) has too many hashes")
            }
            if fn & 1 == 1 || fn == sn {
                oldHash = .node(hash, oldHash)
                newHash = .node(hash, newHash)
                skipRightBorder(&fn, &sn)
            } else {
                newHash = .node(newHash, hash)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else {
            throw TransparencyError(.malformedProof, "the consistency proof from \(oldSize) to \(newSize) has too few hashes")
        }
        guard oldHash == oldRoot else {
            throw TransparencyError(.proofMismatch, "the consistency proof from \(oldSize) to \(newSize) does not lead to the old root")
        }
        guard newHash == newRoot else {
            throw TransparencyError(.proofMismatch, "the consistency proof from \(oldSize) to \(newSize) does not lead to the new root")
        }
    }

    /// The root of a list of leaf hashes, straight from the RFC 9162 §2.1.1 definition (split at
    /// the largest power of two below the count). For small lists and tests; a log uses
    /// ``MerkleTree``.
    public static func rootHash(leafHashes: some RandomAccessCollection<MerkleHash>) -> MerkleHash {
        let leaves = Array(leafHashes)
        func root(_ slice: ArraySlice<MerkleHash>) -> MerkleHash {
            if slice.count == 1 { return slice[slice.startIndex] }
            let split = slice.startIndex + Int(MerkleTree<InMemoryMerkleHashStore>.largestPowerOfTwo(below: UInt64(slice.count)))
            return .node(root(slice[..<split]), root(slice[split...]))
        }
        return leaves.isEmpty ? .emptyTree : root(leaves[...])
    }

    /// RFC 9162's "if LSB(fn) is not set, right-shift both fn and sn equally until either
    /// LSB(fn) is set or fn is 0": climbs the levels where the node is the last of the tree and
    /// has no right sibling.
    private static func skipRightBorder(_ fn: inout UInt64, _ sn: inout UInt64) {
        while fn & 1 == 0 && fn != 0 {
            fn >>= 1
            sn >>= 1
        }
    }

    /// The number of hashes in the inclusion proof of leaf `index` in a tree of `size` leaves.
    static func inclusionLength(index: UInt64, size: UInt64) -> Int {
        guard index < size, size > 1 else { return 0 }
        let inner = 64 - (index ^ (size - 1)).leadingZeroBitCount
        return inner + (index >> UInt64(inner)).nonzeroBitCount
    }
}
