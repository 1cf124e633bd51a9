import CMKAudit
import CMKCore
import CMKTransparency
import Crypto
import Foundation
import Glibc
import Testing

/// The security log as an RFC 9162 tree with C2SP checkpoints (docs/security-log.md, "The Merkle
/// tree"): leaf i is line i+1 of the file without its newline, the key is made once in
/// security.log.key, and a checkpoint tells a log that only grew from one truncated or rewritten.
@Suite("Security log: Merkle tree and checkpoints")
struct SecurityLogTreeTests {
    /// The leaves of the published RFC 6962/9162 reference tree (transparency-dev/merkle
    /// testonly/constants.go). None holds a newline byte, so each can be one line of a file.
    static let referenceLeaves = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]

    /// The probes transparency-dev/merkle publishes for that tree (CMKTransparencyTests/Vectors):
    /// the roots its passing probes name, by size, and its passing inclusion proofs.
    struct Probes: Decodable {
        struct Inclusion: Decodable { var leafIdx: UInt64, treeSize: UInt64, root: String, proof: [String]?, wantErr: Bool }
        struct Consistency: Decodable { var size1: UInt64, size2: UInt64, root1: String, root2: String, wantErr: Bool }
        var inclusion: [Inclusion]
        var consistency: [Consistency]

        static func load() throws -> Probes {
            let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("../CMKTransparencyTests/Vectors/transparency-dev-merkle-probes.json")
            return try JSONDecoder().decode(Probes.self, from: Data(contentsOf: path))
        }

        /// Size → the roots passing probes give for it (a probe may pair a size with a root it ignores).
        var roots: [UInt64: Set<String>] {
            var roots: [UInt64: Set<String>] = [:]
            for probe in inclusion where !probe.wantErr { roots[probe.treeSize, default: []].insert(probe.root) }
            for probe in consistency where !probe.wantErr {
                roots[probe.size1, default: []].insert(probe.root1)
                roots[probe.size2, default: []].insert(probe.root2)
            }
            return roots
        }
    }

    static func bytes(hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
    }

    /// The raw lines of a file without their newlines; bytes after the last newline are left out.
    static func rawLines(_ path: String) throws -> [[UInt8]] {
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        return data.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast().map(Array.init)
    }

    @Test("a file whose lines are the published reference leaves has the published root at every size: leaf i is line i+1 without its newline")
    func publishedVector() throws {
        let directory = try TemporaryDirectory()
        let probes = try Probes.load()
        let roots = probes.roots
        var file = [UInt8]()
        var checkedSizes = 0
        for (count, leaf) in Self.referenceLeaves.enumerated() {
            file += Self.bytes(hex: leaf) + [0x0A]
            try Data(file).write(to: URL(fileURLWithPath: directory.logPath))
            chmod(directory.logPath, 0o600)
            let tree = try SecurityLog(path: directory.logPath).tree()
            let size = UInt64(count + 1)
            #expect(tree.size == size)
            guard let published = roots[size] else { continue }
            #expect(published.contains(try tree.rootHash().base64), "size \(size)")
            checkedSizes += 1
        }
        #expect(checkedSizes >= 6, "the probes name roots for \(checkedSizes) sizes of the 8-leaf tree")
        // Every passing inclusion probe of the 8-leaf tree: the same proof from the file's tree.
        var checkedProofs = 0
        for probe in probes.inclusion where !probe.wantErr && probe.treeSize <= 8 && Set(roots[probe.treeSize] ?? []).count == 1 {
            let tree = try SecurityLog(path: directory.logPath).tree(keepingLeaf: probe.leafIdx)
            #expect(try tree.inclusionProof(index: probe.leafIdx, size: probe.treeSize).map(\.base64) == probe.proof ?? [], "\(probe.leafIdx) of \(probe.treeSize)")
            #expect(try tree.leaf(at: probe.leafIdx) == Self.bytes(hex: Self.referenceLeaves[Int(probe.leafIdx)]))
            checkedProofs += 1
        }
        #expect(checkedProofs >= 3)
        let tree = try SecurityLog(path: directory.logPath).tree()
        // Lines that are not records are leaves all the same, but the chain is broken: nothing is signed.
        #expect(throws: AuditError(.corrupt, "")) { try tree.requireIntactChain() }
    }

    @Test("the tree of a real log: its leaves are its lines, a torn last line is no leaf, proofs verify against the root")
    func realLog() throws {
        let directory = try TemporaryDirectory()
        let log = SecurityLog(path: directory.logPath, clock: ManualClock())
        try fill(log, count: 13)
        let lines = try Self.rawLines(directory.logPath)
        #expect(lines.count == 13)
        // SHA-256(0x00 ‖ line) computed here with swift-crypto, the tree with MerkleProof's definition.
        let leafHashes = lines.map { line in MerkleHash(bytes: Array(SHA256.hash(data: [0x00] + line)))! }
        let tree = try log.tree(keepingLeaf: 6)
        try tree.requireIntactChain()
        #expect(tree.size == 13)
        for size in 0...13 {
            #expect(try tree.rootHash(size: UInt64(size)) == MerkleProof.rootHash(leafHashes: leafHashes[..<size]))
        }
        #expect(try tree.leaf(at: 6) == lines[6])
        let root = try tree.rootHash()
        for index in 0..<13 {
            try MerkleProof.verifyInclusion(leafHash: leafHashes[index], index: UInt64(index), size: 13,
                                            proof: tree.inclusionProof(index: UInt64(index), size: 13), root: root)
        }
        for old in 1...13 {
            try MerkleProof.verifyConsistency(oldSize: UInt64(old), oldRoot: tree.rootHash(size: UInt64(old)), newSize: 13, newRoot: root,
                                              proof: tree.consistencyProof(from: UInt64(old), to: 13))
        }
        #expect(throws: AuditError(.outOfRange, "")) { try tree.inclusionProof(index: 13, size: 13) }
        #expect(throws: AuditError(.outOfRange, "")) { try tree.rootHash(size: 14) }

        // A crash mid-write: the torn bytes are not a leaf.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory.logPath))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"seq":14,"ti"#.utf8))
        try handle.close()
        let torn = try log.tree()
        try torn.requireIntactChain()
        #expect(torn.size == 13)
        #expect(try torn.rootHash() == root)
    }

    @Test("the checkpoint key is made once, 0600, named <hostname>/cmk-syncer; its checkpoints open with the verifier key")
    func checkpointKey() throws {
        let directory = try TemporaryDirectory()
        let log = SecurityLog(path: directory.logPath, clock: ManualClock())
        try fill(log, count: 5)
        #expect(try log.signingKey() == nil)
        let signer = try log.signingKeyCreatingIfNeeded()
        #expect(log.signingKeyPath == directory.path + "/security.log.key")
        #expect(mode(log.signingKeyPath) == 0o600)
        #expect(signer.name == SecurityLog.hostOrigin())
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        #expect(SecurityLog.hostOrigin() == String(cString: host) + "/cmk-syncer")
        #expect(try log.signingKeyCreatingIfNeeded().verifier == signer.verifier)
        #expect(try log.signingKey()?.verifier == signer.verifier)

        let tree = try log.tree()
        let note = try tree.checkpoint(origin: signer.name).signedNote(by: signer).serialized
        let opened = try Checkpoint.open(note, verifier: NoteVerifier(verifierKey: signer.verifier.verifierKey), origin: signer.name)
        #expect(opened.size == 5)
        #expect(opened.rootHash == (try tree.rootHash()))
        #expect(try tree.compare(with: opened) == .consistent)

        // A key others may read is refused, naming the file.
        chmod(log.signingKeyPath, 0o640)
        #expect(throws: AuditError(.permissions, "")) { try log.signingKey() }
        let refused = #expect(throws: AuditError.self) { try log.signingKeyCreatingIfNeeded() }
        #expect(refused?.reason.contains("security.log.key") == true && refused?.reason.contains("chmod 600") == true, "\(String(describing: refused))")
        // A key file that holds no key is corrupt, not replaced.
        chmod(log.signingKeyPath, 0o600)
        try Data("not a key\n".utf8).write(to: URL(fileURLWithPath: log.signingKeyPath))
        #expect(throws: AuditError(.corrupt, "")) { try log.signingKeyCreatingIfNeeded() }
    }

    @Test("a key root makes (sudo cmkctl) is handed to the state directory's owner, still 0600, and root still reads it")
    func keyMadeByRoot() throws {
        try #require(geteuid() == 0, "the suite runs as root, which may give a directory to another user")
        let directory = try TemporaryDirectory()
        #expect(chown(directory.path, 65534, 65534) == 0)
        let log = SecurityLog(path: directory.logPath, clock: ManualClock())
        let signer = try log.signingKeyCreatingIfNeeded()
        var info = stat()
        #expect(stat(log.signingKeyPath, &info) == 0)
        #expect(info.st_uid == 65534 && info.st_gid == 65534, "owner \(info.st_uid):\(info.st_gid)")
        #expect(mode(log.signingKeyPath) == 0o600)
        #expect(try log.signingKey()?.verifier == signer.verifier)
    }

    @Test("compared with an earlier checkpoint: a grown log is consistent, a truncated one truncated, a re-chained rewrite rewritten")
    func compare() throws {
        let directory = try TemporaryDirectory()
        let clock = ManualClock()
        let log = SecurityLog(path: directory.logPath, clock: clock)
        try fill(log, count: 8, clock: clock)
        let signer = try log.signingKeyCreatingIfNeeded()
        let kept = try log.tree().checkpoint(origin: signer.name)
        try fill(log, count: 3, clock: clock)
        #expect(try log.tree().compare(with: kept) == .consistent)

        let original = try lines(directory.logPath)
        try write(lines: Array(original.prefix(6)), to: directory.logPath)
        #expect(try log.verify().outcome == .intact, "a cut tail keeps the chain intact")
        #expect(try log.tree().compare(with: kept) == .truncated(logSize: 6))

        // Record 4 rewritten and the chain recomputed after it: the chain holds, the root does not.
        try write(lines: original, to: directory.logPath)
        var prev = SecurityRecord.genesisHash
        var rewritten = [String]()
        for record in try log.records() {
            var entry = record.entry
            if record.seq == 4 { entry.account = "another-account" }
            let copy = SecurityRecord(seq: record.seq, time: record.time, entry: entry, prev: prev)
            prev = copy.hash
            rewritten.append(String(decoding: copy.canonicalBytes(includingHash: true), as: UTF8.self))
        }
        try write(lines: rewritten, to: directory.logPath)
        #expect(try log.verify().outcome == .intact, "the rewrite re-chained the records")
        #expect(try log.tree().compare(with: kept) == .rewritten)
    }
}
