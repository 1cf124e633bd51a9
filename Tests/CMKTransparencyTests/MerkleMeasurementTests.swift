import Foundation
import Testing

@testable import CMKTransparency

extension Tag {
    /// Prints a measurement; asserts correctness, never timing.
    @Tag static var measurement: Self
}

/// How long proofs take over a 1,000,000-leaf tree in memory. The numbers are printed (and quoted
/// in docs/transparency.md), not asserted: they depend on the machine and the build.
@Suite("Merkle tree: measurement", .tags(.measurement))
struct MerkleMeasurementTests {
    static let leafCount: UInt64 = 1_000_000

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = ContinuousClock.now
        try body()
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    @Test("measurement: roots and proofs over 1,000,000 leaves")
    func millionLeaves() throws {
        var store = InMemoryMerkleHashStore()
        store.reserveCapacity(Int(Self.leafCount))
        var tree = MerkleTree(store: store)
        let build = try Self.seconds {
            for index in 0..<Self.leafCount {
                try tree.append(leafHash: .leaf(withUnsafeBytes(of: index.bigEndian) { Array($0) }))
            }
        }
        #expect(try tree.size() == Self.leafCount)

        var generator = SystemRandomNumberGenerator()
        let samples = 10_000
        let sizes = (0..<samples).map { _ in UInt64.random(in: 1...Self.leafCount, using: &generator) }
        let indices = sizes.map { UInt64.random(in: 0..<$0, using: &generator) }
        let oldSizes = sizes.map { UInt64.random(in: 1...$0, using: &generator) }

        var roots: [MerkleHash] = []
        let rootTime = try Self.seconds { roots = try sizes.map { try tree.rootHash(size: $0) } }
        var inclusion: [[MerkleHash]] = []
        let inclusionTime = try Self.seconds {
            inclusion = try zip(indices, sizes).map { try tree.inclusionProof(index: $0, size: $1) }
        }
        var consistency: [[MerkleHash]] = []
        let consistencyTime = try Self.seconds {
            consistency = try zip(oldSizes, sizes).map { try tree.consistencyProof(from: $0, to: $1) }
        }
        let verifyTime = try Self.seconds {
            for sample in 0..<samples {
                let leaf = MerkleHash.leaf(withUnsafeBytes(of: indices[sample].bigEndian) { Array($0) })
                try MerkleProof.verifyInclusion(leafHash: leaf, index: indices[sample], size: sizes[sample], proof: inclusion[sample], root: roots[sample])
            }
        }
        // Correctness of a sample against the published construction: the old roots the proofs lead from.
        for sample in 0..<100 {
            try MerkleProof.verifyConsistency(oldSize: oldSizes[sample], oldRoot: tree.rootHash(size: oldSizes[sample]),
                                              newSize: sizes[sample], newRoot: roots[sample], proof: consistency[sample])
        }
        let microseconds = { (total: Double) in String(format: "%.1f µs", total / Double(samples) * 1e6) }
        print("""
            measurement: in-memory Merkle tree of \(Self.leafCount) leaves (this build)
              append (leaf hash + full nodes): \(String(format: "%.2f s", build)) in all, \(String(format: "%.2f µs", build / Double(Self.leafCount) * 1e6)) per leaf
              root at a random size:           \(microseconds(rootTime))
              inclusion proof, random leaf:    \(microseconds(inclusionTime)) (\(inclusion.map(\.count).max() ?? 0) hashes at most)
              consistency proof, random sizes: \(microseconds(consistencyTime)) (\(consistency.map(\.count).max() ?? 0) hashes at most)
              inclusion proof verification:    \(microseconds(verifyTime))
            """)
    }
}
