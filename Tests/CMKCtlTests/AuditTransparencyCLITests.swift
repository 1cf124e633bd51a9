import CMKAudit
import CMKTransparency
import Foundation
import Testing

/// The host daemon's security log in the vault service's tree and checkpoint format (issue 15):
/// the real `cmkctl` signs checkpoints and serves proofs over a real state directory, and the
/// same independent verifier that checks the vault service's log
/// (Tests/CMKTransparencyTests/Scripts/tlog_verify.py, written from RFC 9162 and C2SP) accepts
/// them and rejects a truncated, reordered or rewritten host log, as `audit verify --checkpoint` does.
@Suite("cmkctl audit: Merkle tree, checkpoints and proofs")
struct AuditTransparencyCLITests {
    static let verifier = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../CMKTransparencyTests/Scripts/tlog_verify.py").standardized.path

    /// A state directory with a log of several records: `run --once`, then key rotations.
    static func populated(rotations: Int) throws -> Harness {
        let harness = try Harness()
        #expect(try harness.once().code == 0)
        for _ in 0..<rotations { #expect(try harness.ctl(["keys", "rotate"]).code == 0) }
        return harness
    }

    static func lineCount(_ harness: Harness) throws -> Int {
        try Data(contentsOf: URL(fileURLWithPath: harness.state + "/security.log")).filter { $0 == 0x0A }.count
    }

    /// Runs `cmkctl ARGS` and returns its output, expecting exit 0.
    static func ok(_ harness: Harness, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> Harness.Result {
        let result = try harness.ctl(arguments)
        #expect(result.code == 0, "cmkctl \(arguments): \(result.stderr)", sourceLocation: sourceLocation)
        return result
    }

    /// Runs tlog_verify.py with the pinned key over the log file's lines; `log` is its JSON input
    /// without records. Fails naming the fix when python3 or its `cryptography` package is missing.
    static func independent(_ harness: Harness, vkey: String, origin: String, log: [String: Any], kept: [String] = [],
                            records: String? = nil) throws -> (status: Int32, output: String) {
        let input = harness.root + "/tlog-\(UUID().uuidString).json"
        try JSONSerialization.data(withJSONObject: log).write(to: URL(fileURLWithPath: input))
        var arguments = [verifier, "--vkey", vkey, "--origin", origin, "--records-jsonl", records ?? harness.state + "/security.log"]
        for (number, note) in kept.enumerated() {
            let path = harness.root + "/kept-\(number).note"
            try Data(note.utf8).write(to: URL(fileURLWithPath: path))
            arguments += ["--kept", path]
        }
        let run = try Harness.run("/usr/bin/env", ["python3"] + arguments + [input])
        if run.code == 127 || run.stderr.contains("No such file") {
            Issue.record("python3 is missing: run scripts/install-deps.sh")
        }
        if run.code == 3 {
            Issue.record("the Python package 'cryptography' is missing: run scripts/install-deps.sh (pip install cryptography)\n\(run.text)")
        }
        #expect(run.stderr.isEmpty, "the verifier wrote to stderr: \(run.stderr)")
        return (run.code, run.text)
    }

    static func expectRejected(_ verdict: (status: Int32, output: String), _ reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(verdict.status == 1, "the verifier accepted it:\n\(verdict.output)", sourceLocation: sourceLocation)
        let last = verdict.output.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("REJECTED: ") && last.contains(reason), "expected a rejection naming '\(reason)', got:\n\(verdict.output)", sourceLocation: sourceLocation)
    }

    @Test("checkpoints, inclusion and consistency proofs from cmkctl are accepted by the independent verifier; log-key prints the key it pins")
    func independentVerifierAccepts() throws {
        let harness = try Self.populated(rotations: 1)
        defer { harness.cleanUp() }
        let keyJSON = try Self.ok(harness, ["audit", "log-key", "--json"]).object()
        let vkey = try #require(keyJSON["verifierKey"] as? String)
        let origin = try #require(keyJSON["origin"] as? String)
        #expect(origin.hasSuffix("/cmk-syncer") && vkey.hasPrefix(origin + "+"), "\(keyJSON)")
        #expect(try Self.ok(harness, ["audit", "log-key"]).text == vkey + "\n")
        let keyMode = try FileManager.default.attributesOfItem(atPath: harness.state + "/security.log.key")[.posixPermissions] as? Int
        #expect(keyMode == 0o600)

        let first = try Self.ok(harness, ["audit", "checkpoint"]).text
        let firstSize = try Self.lineCount(harness)
        for _ in 0..<3 { _ = try Self.ok(harness, ["keys", "rotate"]) }
        let second = try Self.ok(harness, ["audit", "checkpoint", "--json"]).object()
        let size = try Self.lineCount(harness)
        #expect(second["size"] as? Int == size && size > firstSize + 2, "\(second)")
        #expect(second["origin"] as? String == origin && second["verifierKey"] as? String == vkey)
        let secondNote = try #require(second["checkpoint"] as? String)
        #expect(secondNote.hasPrefix("\(origin)\n\(size)\n\(second["rootHash"] as? String ?? "-")\n\n\u{2014} \(origin) "), "\(secondNote)")

        var inclusion: [[String: Any]] = []
        let lines = try Data(contentsOf: URL(fileURLWithPath: harness.state + "/security.log")).split(separator: UInt8(0x0A))
        for index in 0..<size {
            let proof = try Self.ok(harness, ["audit", "prove", "--index", String(index), "--json"]).object()
            #expect(proof["leaf"] as? String == Data(lines[index]).base64EncodedString(), "leaf \(index) is line \(index + 1) without its newline")
            #expect(proof["seq"] as? Int == index + 1 && proof["size"] as? Int == size)
            inclusion.append(["index": index, "tree_size": size, "hashes": proof["hashes"] ?? []])
        }
        for index in [0, firstSize - 1] {
            let proof = try Self.ok(harness, ["audit", "prove", "--index", String(index), "--size", String(firstSize), "--json"]).object()
            inclusion.append(["index": index, "tree_size": firstSize, "hashes": proof["hashes"] ?? []])
        }
        let consistency = try Self.ok(harness, ["audit", "consistency", "--from", String(firstSize), "--json"]).object()
        #expect(consistency["to"] as? Int == size)
        let log: [String: Any] = [
            "checkpoints": [first, secondNote], "inclusion_proofs": inclusion,
            "consistency_proofs": [["old_size": firstSize, "new_size": size, "hashes": consistency["hashes"] ?? []]],
        ]
        let verdict = try Self.independent(harness, vkey: vkey, origin: origin, log: log, kept: [first])
        #expect(verdict.status == 0, "rejected:\n\(verdict.output)")
        #expect(verdict.output.contains("checked: consistency \(firstSize) -> \(size) (checkpoint 1 -> checkpoint 2)"), "\(verdict.output)")
        #expect(verdict.output.contains("checked: records 0..<\(size) hash to the root of checkpoint 2"), "\(verdict.output)")
        #expect(verdict.output.components(separatedBy: "checked: inclusion of record").count - 1 == size + 2, "\(verdict.output)")

        // cmkctl's own check agrees, and the plain verify output is unchanged.
        let keptPath = harness.root + "/first.note"
        try Data(first.utf8).write(to: URL(fileURLWithPath: keptPath))
        let verify = try Self.ok(harness, ["audit", "verify", "--checkpoint", keptPath])
        #expect(verify.text.hasSuffix("checkpoint '\(keptPath)' (size \(firstSize)) verified: the log's first \(firstSize) records hash to its root; \(size - firstSize) record(s) appended since\n"), "\(verify.text)")
        #expect(try Self.ok(harness, ["audit", "verify"]).text.split(separator: "\n").count == 1)
        // Out of range: exit 1 naming the size.
        let beyond = try harness.ctl(["audit", "prove", "--index", String(size)])
        #expect(beyond.code == 1 && beyond.stderr.contains("audit.out-of-range"), "\(beyond.stderr)")
    }

    /// The log's records re-chained after `transform`: seq, prev and hash recomputed, so
    /// `audit verify` finds an intact chain and only a checkpoint tells.
    static func rechain(_ harness: Harness, _ transform: ([SecurityRecord]) -> [SecurityLogEntry]) throws {
        let path = harness.state + "/security.log"
        let records = try SecurityLog(path: path).records()
        var prev = SecurityRecord.genesisHash
        var out = [UInt8]()
        for (offset, entry) in transform(records).enumerated() {
            let record = SecurityRecord(seq: offset + 1, time: records[min(offset, records.count - 1)].time, entry: entry, prev: prev)
            prev = record.hash
            out += record.canonicalBytes(includingHash: true) + [0x0A]
        }
        try Data(out).write(to: URL(fileURLWithPath: path))
    }

    @Test("a truncated, reordered or rewritten host log: the chain may still hold, but audit verify --checkpoint exits 1 naming it and the independent verifier rejects it",
          arguments: ["truncated", "reordered", "rewritten", "reordered lines", "forged checkpoint"])
    func tampering(_ tampering: String) throws {
        let harness = try Self.populated(rotations: 2)
        defer { harness.cleanUp() }
        let keyJSON = try Self.ok(harness, ["audit", "log-key", "--json"]).object()
        let vkey = try #require(keyJSON["verifierKey"] as? String), origin = try #require(keyJSON["origin"] as? String)
        var kept = try Self.ok(harness, ["audit", "checkpoint"]).text
        let size = try Self.lineCount(harness)
        #expect(size >= 5)
        let path = harness.state + "/security.log"
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        var lines = original.split(separator: UInt8(0x0A)).map { Data($0) }
        let expected: (cmkctl: String, python: String)
        switch tampering {
        case "truncated":
            // The last two records cut: a chain that holds, shorter than the checkpoint.
            try Data(lines.dropLast(2).map { $0 + [0x0A] }.joined()).write(to: URL(fileURLWithPath: path))
            expected = ("TRUNCATED: checkpoint", "truncated: checkpoint 1 commits to \(size) records but the log serves \(size - 2)")
        case "reordered":
            try Self.rechain(harness) { records in
                var entries = records.map(\.entry)
                entries.swapAt(1, 2)
                return entries
            }
            expected = ("REWRITTEN: the log's first \(size) records", "do not hash to the root of checkpoint 1")
        case "rewritten":
            try Self.rechain(harness) { records in
                records.map { record in
                    var entry = record.entry
                    if record.seq == 3 { entry.actor = .daemon; entry.details["rewritten"] = "yes" }
                    return entry
                }
            }
            expected = ("REWRITTEN: the log's first \(size) records", "do not hash to the root of checkpoint 1")
        case "reordered lines":
            // Two lines swapped as they are: the chain breaks too, and both checks say so.
            lines.swapAt(1, 2)
            try Data(lines.map { $0 + [0x0A] }.joined()).write(to: URL(fileURLWithPath: path))
            expected = ("BROKEN at line 2", "do not hash to the root of checkpoint 1")
        default:
            // A checkpoint edited to claim fewer records: its signature no longer verifies.
            kept = kept.replacingOccurrences(of: "\n\(size)\n", with: "\n\(size - 1)\n")
            expected = ("is not a checkpoint signed by \(origin)+", "the signature by the pinned key \(origin) does not verify")
        }
        if tampering == "truncated" || tampering == "reordered" || tampering == "rewritten" {
            #expect(try harness.ctl(["audit", "verify"]).code == 0, "the hash chain alone holds: only the checkpoint tells")
        }
        let keptPath = harness.root + "/kept.note"
        try Data(kept.utf8).write(to: URL(fileURLWithPath: keptPath))
        let verify = try harness.ctl(["audit", "verify", "--checkpoint", keptPath])
        #expect(verify.code == 1, "\(tampering): \(verify.text)")
        #expect(verify.stderr.contains(expected.cmkctl), "\(tampering): \(verify.stderr)")
        // With the key given as pinned (--key) rather than read from security.log.key: the same verdict.
        let pinned = try harness.ctl(["audit", "verify", "--checkpoint", keptPath, "--key", vkey])
        #expect(pinned.code == 1 && pinned.stderr.contains(expected.cmkctl), "\(tampering): \(pinned.stderr)")

        let verdict = try Self.independent(harness, vkey: vkey, origin: origin, log: ["checkpoints": [kept]])
        Self.expectRejected(verdict, expected.python)
    }

    @Test("a checkpoint checked with another pinned key is refused; no key file and no --key names the fix; a broken chain is not signed")
    func keysAndBrokenChain() throws {
        let harness = try Self.populated(rotations: 0)
        defer { harness.cleanUp() }
        let keptPath = harness.root + "/kept.note"
        let noKey = try harness.ctl(["audit", "verify", "--checkpoint", keptPath])
        #expect(noKey.code == 1 && noKey.stderr.contains("there is no security.log.key") && noKey.stderr.contains("--key"), "\(noKey.stderr)")
        try Data(try Self.ok(harness, ["audit", "checkpoint"]).stdout).write(to: URL(fileURLWithPath: keptPath))
        let other = "other.example/cmk-syncer+00000000+AXOlus514O0/KNTExsv1HQM1sym5H6UCKYMwbyo0Ss63"
        let wrongKey = try harness.ctl(["audit", "verify", "--checkpoint", keptPath, "--key", other])
        #expect(wrongKey.code == 2 && wrongKey.stderr.contains("--key is not a verifier key"), "\(wrongKey.stderr)")
        // Another key of the same name (a host that made a new key): the kept checkpoint is not its.
        let origin = try #require(try Self.ok(harness, ["audit", "log-key", "--json"]).object()["origin"] as? String)
        let another = try NoteSigner.generate(name: origin).verifier.verifierKey
        let otherKey = try harness.ctl(["audit", "verify", "--checkpoint", keptPath, "--key", another])
        #expect(otherKey.code == 1 && otherKey.stderr.contains("no signature by the pinned key"), "\(otherKey.stderr)")

        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: harness.state + "/security.log"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("garbage\n".utf8))
        try handle.close()
        for command in [["audit", "checkpoint"], ["audit", "prove", "--index", "0"], ["audit", "consistency", "--from", "1"]] {
            let refused = try harness.ctl(command)
            #expect(refused.code == 1 && refused.stderr.contains("audit.corrupt") && refused.stderr.contains("no checkpoint or proof is made"), "\(command): \(refused.stderr)")
            #expect(refused.text.isEmpty)
        }
    }
}
