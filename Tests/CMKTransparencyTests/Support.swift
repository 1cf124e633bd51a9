import Foundation
import Testing

@testable import CMKTransparency

/// Bytes from hex digits (test fixtures).
func bytes(hex: String) -> [UInt8] {
    var result: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        result.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return result
}

/// A hash from 64 hex digits (test fixtures).
func hash(_ hex: String) -> MerkleHash {
    MerkleHash(hex: hex)!
}

/// A tree of `count` leaves whose records are the decimal strings "record-0", "record-1", ….
func makeTree(records count: Int) throws -> (tree: MerkleTree<InMemoryMerkleHashStore>, leaves: [MerkleHash]) {
    var tree = MerkleTree()
    var leaves: [MerkleHash] = []
    for index in 0..<count {
        let record = Array("record-\(index)".utf8)
        try tree.append(record: record)
        leaves.append(.leaf(record))
    }
    return (tree, leaves)
}

/// RFC 9162 §2.1.3.1 `PATH(m, D[n])` and §2.1.4.1 `PROOF(m, D[n])` written directly from the
/// recursive definitions over a list of leaf hashes: the reference the store-backed tree is
/// compared with.
enum ReferenceProofs {
    static func path(_ m: Int, _ leaves: ArraySlice<MerkleHash>) -> [MerkleHash] {
        let n = leaves.count
        if n == 1 { return [] }
        let k = largestPowerOfTwo(below: n), start = leaves.startIndex
        if m < k {
            return path(m, leaves[start..<(start + k)]) + [MerkleProof.rootHash(leafHashes: leaves[(start + k)...])]
        }
        return path(m - k, leaves[(start + k)...]) + [MerkleProof.rootHash(leafHashes: leaves[start..<(start + k)])]
    }

    static func proof(_ m: Int, _ leaves: ArraySlice<MerkleHash>) -> [MerkleHash] {
        m == 0 ? [] : subproof(m, leaves, true)
    }

    private static func subproof(_ m: Int, _ leaves: ArraySlice<MerkleHash>, _ b: Bool) -> [MerkleHash] {
        let n = leaves.count, start = leaves.startIndex
        if m == n { return b ? [] : [MerkleProof.rootHash(leafHashes: leaves)] }
        let k = largestPowerOfTwo(below: n)
        if m <= k {
            return subproof(m, leaves[start..<(start + k)], b) + [MerkleProof.rootHash(leafHashes: leaves[(start + k)...])]
        }
        return subproof(m - k, leaves[(start + k)...], false) + [MerkleProof.rootHash(leafHashes: leaves[start..<(start + k)])]
    }

    private static func largestPowerOfTwo(below n: Int) -> Int {
        var k = 1
        while k * 2 < n { k *= 2 }
        return k
    }
}

/// The error code a throwing call ends with, or nil when it returns.
func errorCode(_ body: () throws -> Void) -> TransparencyError.Code? {
    do {
        try body()
        return nil
    } catch let error as TransparencyError {
        return error.code
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}
