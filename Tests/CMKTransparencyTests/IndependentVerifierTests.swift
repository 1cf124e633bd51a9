import Foundation
import Testing

@testable import CMKTransparency

/// The log checked by Scripts/tlog_verify.py, a verifier written in Python from RFC 9162 and the
/// C2SP specs (not from this Swift code), with the `cryptography` package for Ed25519: it accepts
/// the honest log and rejects a truncated, reordered or rewritten log, a forged checkpoint and a
/// fork.
@Suite("Independent Python verifier")
struct IndependentVerifierTests {
    static let origin = "cmk-vault.test/tenant-1/security-log"
    static let checkpointSizes: [UInt64] = [5, 16, 23, 37]
    static let keptSize: UInt64 = 16

    /// What a log serves, in the verifier's JSON shape.
    struct LogFile: Codable {
        struct Inclusion: Codable {
            var index: UInt64, tree_size: UInt64, hashes: [String]
        }
        struct Consistency: Codable {
            var old_size: UInt64, new_size: UInt64, hashes: [String]
        }
        var records: [String]
        var checkpoints: [String]
        var inclusion_proofs: [Inclusion]
        var consistency_proofs: [Consistency]
    }

    /// A log of 37 security records with checkpoints at 5, 16, 23 and 37, inclusion proofs of
    /// every record in the newest checkpoint and of a few in older ones, and consistency proofs
    /// between successive checkpoints.
    struct Log {
        var records: [[UInt8]]
        var tree: MerkleTree<InMemoryMerkleHashStore>

        init(records: [[UInt8]]) throws {
            self.records = records
            tree = MerkleTree()
            for record in records { try tree.append(record: record) }
        }

        func checkpoint(_ size: UInt64, signer: NoteSigner) throws -> String {
            try Checkpoint(origin: IndependentVerifierTests.origin, size: size, rootHash: tree.rootHash(size: size)).signedNote(by: signer).serialized
        }

        func file(signer: NoteSigner, sizes: [UInt64] = IndependentVerifierTests.checkpointSizes) throws -> LogFile {
            var inclusion: [LogFile.Inclusion] = []
            for index in 0..<UInt64(records.count) {
                inclusion.append(.init(index: index, tree_size: sizes.last!, hashes: try tree.inclusionProof(index: index, size: sizes.last!).map(\.base64)))
            }
            for (index, size) in [(0, UInt64(5)), (4, 5), (9, 16), (15, 16), (22, 23)] where sizes.contains(size) {
                inclusion.append(.init(index: UInt64(index), tree_size: size, hashes: try tree.inclusionProof(index: UInt64(index), size: size).map(\.base64)))
            }
            var consistency: [LogFile.Consistency] = []
            for (old, new) in zip(sizes, sizes.dropFirst()) {
                consistency.append(.init(old_size: old, new_size: new, hashes: try tree.consistencyProof(from: old, to: new).map(\.base64)))
            }
            let kept = IndependentVerifierTests.keptSize
            if kept < sizes.last! {
                consistency.append(.init(old_size: kept, new_size: sizes.last!, hashes: try tree.consistencyProof(from: kept, to: sizes.last!).map(\.base64)))
            }
            return LogFile(records: records.map { Data($0).base64EncodedString() }, checkpoints: try sizes.map { try checkpoint($0, signer: signer) },
                           inclusion_proofs: inclusion, consistency_proofs: consistency)
        }
    }

    static func records(_ count: Int, tag: String = "") -> [[UInt8]] {
        (0..<count).map { index in
            Array(#"{"seq":\#(index),"time":"2025-06-01T12:00:\#(String(format: "%02d", index % 60))Z","actor":"admin-\#(index % 3)\#(tag)","operation":"key.unwrap"}"#.utf8)
        }
    }

    /// The outcome of one run of the script.
    struct Verdict {
        var status: Int32
        var output: String
    }

    static func verify(_ log: LogFile, signer: NoteSigner, kept: [String] = [], vkey: String? = nil, origin: String = origin) throws -> Verdict {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tlog-verify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let logPath = directory.appendingPathComponent("log.json")
        try encoder.encode(log).write(to: logPath)
        var arguments = [script, "--vkey", vkey ?? signer.verifier.verifierKey, "--origin", origin]
        for (number, note) in kept.enumerated() {
            let path = directory.appendingPathComponent("kept-\(number).note")
            try Data(note.utf8).write(to: path)
            arguments += ["--kept", path.path]
        }
        arguments.append(logPath.path)
        let run = try PythonProcess.run(arguments, in: directory)
        if run.status == 3 {
            throw PythonProcess.Failure("the Python package 'cryptography' is missing: \(PythonProcess.installHint)\n\(run.output)")
        }
        #expect(run.errors.isEmpty, "the script wrote to stderr: \(run.errors)")
        return Verdict(status: run.status, output: run.output)
    }

    static let script: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts/tlog_verify.py").path

    static func expectRejected(_ verdict: Verdict, _ reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(verdict.status == 1, "the script accepted it:\n\(verdict.output)", sourceLocation: sourceLocation)
        let last = verdict.output.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("REJECTED: ") && last.contains(reason), "expected a rejection naming '\(reason)', got:\n\(verdict.output)", sourceLocation: sourceLocation)
        #expect(!verdict.output.contains("OK:"), sourceLocation: sourceLocation)
    }

    // MARK: The honest log

    @Test("the honest log is accepted, and the Swift verifier agrees")
    func honest() throws {
        let signer = try NoteSigner.generate(name: Self.origin)
        let log = try Log(records: Self.records(37))
        let file = try log.file(signer: signer)
        let verdict = try Self.verify(file, signer: signer, kept: [log.checkpoint(Self.keptSize, signer: signer)])
        #expect(verdict.status == 0, "rejected:\n\(verdict.output)")
        let lines = verdict.output.split(separator: "\n")
        #expect(lines.last?.hasPrefix("OK: 4 checkpoint(s), 1 kept checkpoint(s), 37 record(s), 42 inclusion and 4 consistency proof(s)") == true, "\(verdict.output)")
        #expect(lines.filter { $0.hasPrefix("checked: inclusion of record") }.count == 42)
        #expect(lines.contains("checked: consistency 16 -> 37 (kept checkpoint 1 -> checkpoint 4)"))
        #expect(lines.contains("checked: consistency 5 -> 16 (checkpoint 1 -> checkpoint 2)"))
        #expect(lines.contains("checked: records 0..<37 hash to the root of checkpoint 4"))

        // The same data through the Swift verifier.
        var checkpoints: [UInt64: Checkpoint] = [:]
        for note in file.checkpoints {
            let checkpoint = try Checkpoint.open(note, verifier: signer.verifier, origin: Self.origin)
            checkpoints[checkpoint.size] = checkpoint
        }
        for proof in file.inclusion_proofs {
            try MerkleProof.verifyInclusion(leafHash: .leaf(log.records[Int(proof.index)]), index: proof.index, size: proof.tree_size,
                                            proof: proof.hashes.map { MerkleHash(base64: $0)! }, root: checkpoints[proof.tree_size]!.rootHash)
        }
        for proof in file.consistency_proofs {
            try MerkleProof.verifyConsistency(oldSize: proof.old_size, oldRoot: checkpoints[proof.old_size]!.rootHash, newSize: proof.new_size,
                                              newRoot: checkpoints[proof.new_size]!.rootHash, proof: proof.hashes.map { MerkleHash(base64: $0)! })
        }
    }

    @Test("the verifier pins the key and the origin")
    func pinning() throws {
        let signer = try NoteSigner.generate(name: Self.origin)
        let file = try Log(records: Self.records(37)).file(signer: signer)
        let stranger = try NoteSigner.generate(name: Self.origin)
        Self.expectRejected(try Self.verify(file, signer: signer, vkey: stranger.verifier.verifierKey), "no signature by the pinned key")
        Self.expectRejected(try Self.verify(file, signer: signer, origin: "cmk-vault.test/tenant-2/security-log"), "is not the pinned origin")
    }

    // MARK: Attacks

    @Test("a truncated log is rejected: records cut off under an old checkpoint")
    func truncatedRecords() throws {
        let signer = try NoteSigner.generate(name: Self.origin)
        var file = try Log(records: Self.records(37)).file(signer: signer)
        file.records.removeLast(7)
        file.inclusion_proofs.removeAll { $0.index >= 30 }
        Self.expectRejected(try Self.verify(file, signer: signer), "truncated: checkpoint 4 commits to 37 records but the log serves 30")
    }

    @Test("a truncated log is rejected: cut and signed again, against a kept checkpoint")
    func truncatedAndResigned() throws {
        let signer = try NoteSigner.generate(name: Self.origin)
        let honest = try Log(records: Self.records(37))
        let kept = try honest.checkpoint(Self.keptSize, signer: signer)
        let truncated = try Log(records: Array(Self.records(37).prefix(12)))
        let file = try truncated.file(signer: signer, sizes: [5, 12])
        // Without the kept checkpoint the cut log is self-consistent; with it, it is not.
        #expect(try Self.verify(file, signer: signer).status == 0)
        Self.expectRejected(try Self.verify(file, signer: signer, kept: [kept]), "truncated: kept checkpoint 1 has 16 leaves but the log's newest checkpoint only 12")
    }

    @Test("a reordered log is rejected")
    func reordered() throws {
        let signer = try NoteSigner.generate(name: Self.origin)
        var file = try Log(records: Self.records(37)).file(signer: signer)
        file.records.swapAt(2, 3)
        Self.expectRejected(try Self.verify(file, signer: signer), "records 0..5 do not hash to the root of checkpoint 1")
    }

    @Test("a rewritten record is rejected")
    func rewritten() throws {
        let signer = try NoteSigner.generate(name: Self.origin)
        var file = try Log(records: Self.records(37)).file(signer: signer)
        file.records[20] = Data(#"{"seq":20,"actor":"nobody","operation":"key.unwrap"}"#.utf8).base64EncodedString()
        Self.expectRejected(try Self.verify(file, signer: signer), "records 0..23 do not hash to the root of checkpoint 3")
    }

    @Test("a forged checkpoint is rejected: altered body, or signed by another key of the same name")
    func forged() throws {
        let signer = try NoteSigner.generate(name: Self.origin)
        let log = try Log(records: Self.records(37))
        var altered = try log.file(signer: signer)
        // Claim 36 records with the old signature.
        altered.checkpoints[3] = altered.checkpoints[3].replacingOccurrences(of: "\n37\n", with: "\n36\n")
        Self.expectRejected(try Self.verify(altered, signer: signer), "checkpoint 4: the signature by the pinned key")

        var impostor = try log.file(signer: signer)
        let forger = try NoteSigner.generate(name: Self.origin)
        impostor.checkpoints[3] = try log.checkpoint(37, signer: forger)
        Self.expectRejected(try Self.verify(impostor, signer: signer), "checkpoint 4: no signature by the pinned key")
    }

    @Test("a checkpoint with a leading zero in its size is rejected even when properly signed")
    func leadingZero() throws {
        let signer = try NoteSigner.generate(name: Self.origin)
        let log = try Log(records: Self.records(37))
        var file = try log.file(signer: signer)
        let body = "\(Self.origin)\n05\n\(try log.tree.rootHash(size: 5).base64)\n"
        file.checkpoints[0] = try SignedNote(signing: body, with: [signer]).serialized
        Self.expectRejected(try Self.verify(file, signer: signer), "checkpoint 1: tree size is not plain decimal")
    }

    @Test("a fork is rejected: a kept checkpoint from another history")
    func forkAgainstKept() throws {
        let signer = try NoteSigner.generate(name: Self.origin)
        let shown = try Log(records: Self.records(37))
        let kept = try shown.checkpoint(Self.keptSize, signer: signer)
        // The log later serves a history that differs at record 10, consistent in itself.
        var rewritten = Self.records(37)
        rewritten[10] = Array(#"{"seq":10,"actor":"someone-else","operation":"admin.add"}"#.utf8)
        let file = try Log(records: rewritten).file(signer: signer)
        #expect(try Self.verify(file, signer: signer).status == 0, "the rewritten log alone is consistent in itself")
        Self.expectRejected(try Self.verify(file, signer: signer, kept: [kept]), "fork: kept checkpoint 1 (size 16) and checkpoint 4 (size 37) are not consistent")
    }

    @Test("a fork is rejected: two served checkpoints that no consistency proof links")
    func forkWithinLog() throws {
        let signer = try NoteSigner.generate(name: Self.origin)
        let honest = try Log(records: Self.records(37))
        var unlinked = try honest.file(signer: signer)
        unlinked.consistency_proofs.removeAll { $0.old_size == 16 && $0.new_size == 23 }
        Self.expectRejected(try Self.verify(unlinked, signer: signer), "fork: no consistency proof links checkpoint 2 (size 16) to checkpoint 3 (size 23)")

        var other = Self.records(37)
        other[20] = Array(#"{"seq":20,"operation":"other-branch"}"#.utf8)
        let branch = try Log(records: other)
        var mixed = try honest.file(signer: signer)
        mixed.checkpoints[2] = try branch.checkpoint(23, signer: signer)
        Self.expectRejected(try Self.verify(mixed, signer: signer), "fork: checkpoint 2 (size 16) and checkpoint 3 (size 23) are not consistent")
    }
}

/// Runs python3 (found on PATH, where `scripts/install-deps.sh` installs `cryptography`).
enum PythonProcess {
    static let installHint = "run scripts/install-deps.sh (pip install cryptography)"

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Runs the script; stderr goes to a file beside the log, so neither pipe can fill and block.
    static func run(_ arguments: [String], in directory: URL) throws -> (status: Int32, output: String, errors: String) {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/python3" }
        guard let python = (paths + ["/usr/bin/python3"]).first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw Failure("python3 is missing: \(installHint)")
        }
        let errorURL = directory.appendingPathComponent("stderr.txt")
        _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        let errorHandle = try FileHandle(forWritingTo: errorURL)
        defer { try? errorHandle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = errorHandle
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errors = (try? String(contentsOf: errorURL, encoding: .utf8)) ?? ""
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), errors)
    }
}
