import Foundation
import Testing

@testable import CMKTransparency

/// For every tree size n ≤ 70 and every m ≤ n: the store-backed tree's roots and proofs equal
/// those of the RFC's recursive definitions, they verify, and any single-byte change, wrong index,
/// wrong size, or truncated or extended proof is rejected.
@Suite("Merkle tree: properties up to 70 leaves")
struct MerklePropertyTests {
    /// One tree of 71 leaves: every smaller tree is a prefix of it, so its historical roots are
    /// the roots of the smaller trees, and size n + 1 exists for every n ≤ 70.
    static let fixture: (tree: MerkleTree<InMemoryMerkleHashStore>, leaves: [MerkleHash]) = try! makeTree(records: 71)

    static func root(_ size: UInt64) -> MerkleHash {
        try! fixture.tree.rootHash(size: size)
    }

    /// Every proof with one byte changed (each byte of each hash gets one flip).
    static func flippedByte(_ proof: [MerkleHash]) -> [[MerkleHash]] {
        var variants: [[MerkleHash]] = []
        for position in proof.indices {
            for byte in 0..<MerkleHash.byteCount {
                var bytes = proof[position].bytes
                bytes[byte] ^= 0x01 << UInt8(byte % 8)
                var changed = proof
                changed[position] = MerkleHash(bytes: bytes)!
                variants.append(changed)
            }
        }
        return variants
    }

    /// The proof with a hash removed at each position, and with an extra hash at each position.
    static func resized(_ proof: [MerkleHash], extra: MerkleHash) -> [[MerkleHash]] {
        var variants: [[MerkleHash]] = []
        for position in proof.indices {
            var shorter = proof
            shorter.remove(at: position)
            variants.append(shorter)
        }
        for position in 0...proof.count {
            var longer = proof
            longer.insert(extra, at: position)
            variants.append(longer)
            if position < proof.count {
                var duplicated = proof
                duplicated.insert(proof[position], at: position)
                variants.append(duplicated)
            }
        }
        return variants
    }

    @Test("roots at every size equal the RFC definition", arguments: 0...70)
    func roots(size: Int) throws {
        #expect(Self.root(UInt64(size)) == MerkleProof.rootHash(leafHashes: Self.fixture.leaves.prefix(size)))
        let (fresh, _) = try makeTree(records: size)
        #expect(try fresh.rootHash() == Self.root(UInt64(size)), "a tree of exactly \(size) leaves")
    }

    @Test("inclusion proofs: exact, verified, and every tampering rejected", arguments: 1...70)
    func inclusion(size n: Int) throws {
        let tree = Self.fixture.tree, leaves = Self.fixture.leaves
        let size = UInt64(n), root = Self.root(size)
        for m in 0..<n {
            let index = UInt64(m), leaf = leaves[m]
            let proof = try tree.inclusionProof(index: index, size: size)
            #expect(proof == ReferenceProofs.path(m, leaves[0..<n]), "leaf \(m) of \(n)")
            #expect(proof.count == MerkleProof.inclusionLength(index: index, size: size))
            try MerkleProof.verifyInclusion(leafHash: leaf, index: index, size: size, proof: proof, root: root)

            func rejected(_ what: String, leaf: MerkleHash = leaf, index: UInt64 = index, size: UInt64 = size, proof: [MerkleHash] = proof,
                          root: MerkleHash = root) {
                let code = errorCode { try MerkleProof.verifyInclusion(leafHash: leaf, index: index, size: size, proof: proof, root: root) }
                #expect(code == .proofMismatch || code == .malformedProof, "leaf \(m) of \(n): \(what) was accepted")
            }
            for variant in Self.flippedByte(proof) { rejected("a changed proof byte", proof: variant) }
            for (byte, variant) in Self.flippedByte([leaf]).enumerated() { rejected("leaf byte \(byte) changed", leaf: variant[0]) }
            for (byte, variant) in Self.flippedByte([root]).enumerated() { rejected("root byte \(byte) changed", root: variant[0]) }
            for variant in Self.resized(proof, extra: leaves[70]) { rejected("a proof of \(variant.count) hashes", proof: variant) }
            for other in 0..<n where other != m { rejected("index \(other)", index: UInt64(other)) }
            rejected("index = size", index: size)
            rejected("size + 1 with its root", size: size + 1, root: Self.root(size + 1))
            if m < n - 1 { rejected("size - 1 with its root", size: size - 1, root: Self.root(size - 1)) }
            rejected("the root of size \(n - 1)", root: Self.root(size - 1))
        }
        #expect(errorCode { _ = try tree.inclusionProof(index: size, size: size) } == .outOfRange)
    }

    @Test("consistency proofs: exact, verified, and every tampering rejected", arguments: 0...70)
    func consistency(size n: Int) throws {
        let tree = Self.fixture.tree, leaves = Self.fixture.leaves
        let newSize = UInt64(n), newRoot = Self.root(newSize)
        for m in 0...n {
            let oldSize = UInt64(m), oldRoot = Self.root(oldSize)
            let proof = try tree.consistencyProof(from: oldSize, to: newSize)
            #expect(proof == ReferenceProofs.proof(m, leaves[0..<n]), "\(m) → \(n)")
            if m == 0 || m == n { #expect(proof.isEmpty, "\(m) → \(n) must be empty") }
            if m > 0, m < n, m & (m - 1) == 0 { #expect(!proof.contains(oldRoot), "\(m) → \(n) leaves the old root out") }
            try MerkleProof.verifyConsistency(oldSize: oldSize, oldRoot: oldRoot, newSize: newSize, newRoot: newRoot, proof: proof)

            func rejected(_ what: String, oldSize: UInt64 = oldSize, oldRoot: MerkleHash = oldRoot, newSize: UInt64 = newSize,
                          newRoot: MerkleHash = newRoot, proof: [MerkleHash] = proof) {
                let code = errorCode {
                    try MerkleProof.verifyConsistency(oldSize: oldSize, oldRoot: oldRoot, newSize: newSize, newRoot: newRoot, proof: proof)
                }
                #expect(code == .proofMismatch || code == .malformedProof, "\(m) → \(n): \(what) was accepted")
            }
            for variant in Self.flippedByte(proof) { rejected("a changed proof byte", proof: variant) }
            for variant in Self.flippedByte([oldRoot]) { rejected("a changed old root", oldRoot: variant[0]) }
            // From the empty tree nothing binds the new root: every tree extends the empty tree.
            if m > 0 || n == 0 {
                for variant in Self.flippedByte([newRoot]) { rejected("a changed new root", newRoot: variant[0]) }
            }
            for variant in Self.resized(proof, extra: leaves[70]) { rejected("a proof of \(variant.count) hashes", proof: variant) }
            // Other sizes, each with its true root: rejected unless this very proof also proves them.
            func otherSizes(old: Int, new: Int) throws {
                guard old >= 0, new <= 71, old <= new || new + 1 == old else { return }
                if old <= new, try tree.consistencyProof(from: UInt64(old), to: UInt64(new)) == proof { return }
                rejected("sizes \(old) → \(new)", oldSize: UInt64(old), oldRoot: Self.root(UInt64(old)), newSize: UInt64(new), newRoot: Self.root(UInt64(new)))
            }
            try otherSizes(old: m, new: n + 1)
            try otherSizes(old: m + 1, new: n)
            try otherSizes(old: m - 1, new: n)
            if m < n { try otherSizes(old: m, new: n - 1) }
            rejected("an old size above the new size", oldSize: newSize + 1, oldRoot: Self.root(newSize + 1))
        }
    }

    @Test("a tree that grew keeps its earlier roots and proofs (nodes never change)")
    func historyIsStable() throws {
        var tree = MerkleTree()
        var roots: [MerkleHash] = [try tree.rootHash()]
        for index in 0..<40 {
            try tree.append(record: Array("r\(index)".utf8))
            roots.append(try tree.rootHash())
        }
        for size in 0...40 { #expect(try tree.rootHash(size: UInt64(size)) == roots[size]) }
        #expect(errorCode { _ = try tree.rootHash(size: 41) } == .outOfRange)
        #expect(errorCode { _ = try tree.consistencyProof(from: 5, to: 41) } == .outOfRange)
        #expect(errorCode { _ = try tree.consistencyProof(from: 6, to: 5) } == .outOfRange)
    }
}
