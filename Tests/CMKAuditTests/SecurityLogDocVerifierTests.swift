@testable import CMKAudit
import CMKCore
import Foundation
import Testing

/// docs/security-log.md's verifier, run as the doc prints it, must reach the verdict of
/// ``SecurityLog/verify()`` (and so of `cmkctl audit verify`) on a real log and on tampered
/// copies: an extra field, an unknown event, a malformed time, fields longer than `append`
/// allows, a `seq` beyond 64 bits, edits, gaps, a torn tail, another chain, a vanished log.
@Suite("Security log: the documented verifier agrees with verify()")
struct SecurityLogDocVerifierTests {
    static let doc = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../docs/security-log.md").standardized.path

    /// The verifier's code: the ```python block of the doc that starts with its marker line.
    static func documentedVerifier() throws -> String {
        let text = try String(contentsOfFile: doc, encoding: .utf8)
        let marker = "```python\n# cmk-syncer security-log verifier"
        let start = try #require(text.range(of: marker), "docs/security-log.md has no verifier block starting with '\(marker)'")
        let body = text[text.index(start.lowerBound, offsetBy: "```python\n".count)...]
        let end = try #require(body.range(of: "\n```"), "the verifier block of docs/security-log.md is not closed")
        return String(body[..<end.lowerBound]) + "\n"
    }

    /// A record line with any field values, hashed correctly: lets a test write what `append`
    /// never would (an unknown event, a malformed time, an extra or an over-long field).
    static func line(seq: Int, time: String = "2025-01-02T03:04:05.678Z", event: String = "rebind", actor: String = "daemon",
                     fields: [(String, String)] = [], details: [(String, String)] = [], prev: String) -> (text: String, hash: String) {
        var members: [(String, CanonicalJSON.Value)] = [
            ("seq", .integer(seq)), ("time", .string(time)), ("event", .string(event)), ("actor", .string(actor)),
            ("details", .object(details.map { ($0.0, .string($0.1)) })), ("prev", .string(prev)),
        ]
        members += fields.map { ($0.0, .string($0.1)) }
        let hash = CanonicalJSON.sha256Hex(CanonicalJSON.encode(.object(members)))
        return (String(decoding: CanonicalJSON.encode(.object(members + [("hash", .string(hash))])), as: UTF8.self), hash)
    }

    /// Swift's verdict in the words the documented verifier prints (its first line).
    static func summary(_ result: VerificationResult) -> String {
        switch result.outcome {
        case .intact: return "intact: \(result.verifiedCount) records, head \(result.headHash)"
        case .tornTail(let torn): return "torn tail at byte \(torn.offset) (the next append repairs it): \(result.verifiedCount) records, head \(result.headHash)"
        case .vanished: return "vanished"
        case .broken(let broken):
            let kind = switch broken.problem {
            case .malformed: "malformed"
            case .hashMismatch: "hash-mismatch"
            case .seqGap: "seq-gap"
            case .prevMismatch: "prev-mismatch"
            case .notTheAnchoredFirstRecord: "not-the-anchored-first-record"
            }
            return "broken at line \(broken.line): \(kind)"
        }
    }

    /// Runs the documented verifier; returns its verdict cut to what ``summary(_:)`` says.
    static func pythonVerdict(_ script: String, log: String) throws -> String {
        let process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, log]
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let verdict = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let intactOrTorn = verdict.hasPrefix("intact") || verdict.hasPrefix("torn tail")
        #expect(process.terminationStatus == (intactOrTorn ? 0 : 1), "the verifier exits 0 only for an intact or torn-tail log: \(verdict)")
        if verdict.hasPrefix("broken"), let paren = verdict.range(of: " (") { return String(verdict[..<paren.lowerBound]) }
        if verdict.hasPrefix("vanished") { return "vanished" }
        return verdict
    }

    @Test("the verifier printed in docs/security-log.md reaches verify()'s verdict on a real log and on tampered copies")
    func documentedVerifierAgrees() throws {
        let script = try Self.documentedVerifier()
        let dir = try TemporaryDirectory()
        let clock = ManualClock()
        let log = SecurityLog(path: dir.logPath, clock: clock)
        try fill(log, count: 3)
        clock.advance(by: 1)
        try log.append(SecurityLogEntry(event: .keyRotationNoticed, key: "data-at-rest-rsa2048", version: "v3", previousVersion: "v2",
                                        actor: .user("é-alice"), details: ["note": "é \"q\"\n\t\u{1}/"]))
        let original = try lines(dir.logPath)
        let records = try log.records()
        let head3 = records[2].hash

        var cases: [(String, [String])] = [("the real log", original)]
        func replacingLast(_ name: String, _ line: (text: String, hash: String)) { cases.append((name, Array(original.dropLast()) + [line.text])) }
        func replacingThird(_ name: String, _ line: (text: String, hash: String)) {
            var copy = original
            copy[2] = line.text
            cases.append((name, copy))
        }
        let prev = records[1].hash
        replacingThird("an extra field", Self.line(seq: 3, fields: [("note", "x")], prev: prev))
        replacingThird("an unknown event", Self.line(seq: 3, event: "key-stolen", prev: prev))
        for time in ["2025-02-30T00:00:00.000Z", "2025-01-02T03:04:05.67Z", "2025-01-02 03:04:05.678Z", "2025-01-02T03:04:05.678+00:00", "2025-13-02T03:04:05.678Z"] {
            replacingThird("a malformed time \(time)", Self.line(seq: 3, time: time, prev: prev))
        }
        replacingThird("seq 0", Self.line(seq: 0, prev: prev))
        replacingThird("an empty actor name", Self.line(seq: 3, actor: "user:", prev: prev))
        replacingThird("an actor that is neither", Self.line(seq: 3, actor: "root", prev: prev))
        replacingThird("an account of 1025 characters", Self.line(seq: 3, fields: [("account", String(repeating: "a", count: 1025))], prev: prev))
        replacingThird("an account of 1025 code points, 1 character", Self.line(seq: 3, fields: [("account", "e" + String(repeating: "\u{301}", count: 1024))], prev: prev))
        replacingThird("a detail value of 257 characters", Self.line(seq: 3, details: [("n", String(repeating: "é", count: 257))], prev: prev))
        replacingThird("a detail key of 257 characters", Self.line(seq: 3, details: [(String(repeating: "k", count: 257), "1")], prev: prev))
        replacingThird("an empty detail key", Self.line(seq: 3, details: [("", "1")], prev: prev))
        replacingThird("one detail key twice, in two normal forms", Self.line(seq: 3, details: [("\u{E9}", "1"), ("e\u{301}", "2")], prev: prev))
        replacingThird("an actor name of 257 characters", Self.line(seq: 3, actor: "user:" + String(repeating: "u", count: 257), prev: prev))
        replacingThird("a wrong prev", Self.line(seq: 3, prev: String(repeating: "1", count: 64)))
        replacingLast("the longest fields append allows (intact)", Self.line(
            seq: 4, actor: "user:" + String(repeating: "ü", count: 256),
            fields: [("account", String(repeating: "é", count: 1024)), ("previousVersion", String(repeating: "v", count: 1024))],
            details: [(String(repeating: "k", count: 256), String(repeating: "\u{301}", count: 256))], prev: head3))
        replacingLast("an actor name that starts with a combining mark (intact)", Self.line(seq: 4, actor: "user:\u{301}x", prev: head3))
        func editing(_ name: String, line: Int, _ text: String, _ replacement: String) {
            var copy = original
            copy[line] = copy[line].replacingOccurrences(of: text, with: replacement)
            cases.append((name, copy))
        }
        editing("an edited field", line: 1, "acct-2", "acct-9")
        editing("a space", line: 1, "\"seq\":2", "\"seq\": 2")
        editing("a seq beyond 64 bits", line: 2, "\"seq\":3", "\"seq\":18446744073709551617")
        editing("a seq with a fraction", line: 2, "\"seq\":3", "\"seq\":3.0")
        editing("a seq as a string", line: 2, "\"seq\":3", "\"seq\":\"3\"")
        editing("a JSON object nested 100,000 deep", line: 2, "\"details\":{", "\"details\":" + String(repeating: "[", count: 100_000) + "{")
        cases.append(("a deleted line", [original[0], original[2], original[3]]))
        cases.append(("two swapped lines", [original[0], original[2], original[1], original[3]]))
        cases.append(("an array", [original[0], "[1]"]))
        cases.append(("not JSON", [original[0], "{\"seq\":"]))

        for (name, content) in cases {
            try write(lines: content, to: dir.logPath)
            try check(name, log: log, path: dir.logPath, script: script)
        }
        // A torn tail: the last record without its newline, and half a record.
        for tail in [String(original[3].prefix(30)), original[3]] {
            try Data((original.dropLast().map { $0 + "\n" }.joined() + tail).utf8).write(to: URL(fileURLWithPath: dir.logPath))
            try check("a torn tail of \(tail.utf8.count) bytes", log: log, path: dir.logPath, script: script)
        }
        // Another chain under this log's anchor; an emptied and a vanished log.
        let other = try TemporaryDirectory()
        try fill(SecurityLog(path: other.logPath, clock: ManualClock(Date(timeIntervalSince1970: 1_800_000_000))), count: 2)
        try FileManager.default.removeItem(atPath: dir.logPath)
        try FileManager.default.copyItem(atPath: other.logPath, toPath: dir.logPath)
        try check("another chain", log: log, path: dir.logPath, script: script)
        try Data().write(to: URL(fileURLWithPath: dir.logPath))
        try check("an emptied log", log: log, path: dir.logPath, script: script)
        try FileManager.default.removeItem(atPath: dir.logPath)
        try check("a vanished log", log: log, path: dir.logPath, script: script)
        // And a log never started: no file, no anchor.
        try check("no log", log: SecurityLog(path: other.path + "/none.log"), path: other.path + "/none.log", script: script)
    }

    private func check(_ name: String, log: SecurityLog, path: String, script: String) throws {
        let swift = Self.summary(try log.verify())
        let python = try Self.pythonVerdict(script, log: path)
        #expect(python == swift, "\(name): the documented verifier says '\(python)', verify() says '\(swift)'")
    }

    @Test("verify refuses a record whose fields are longer than append allows, naming the field")
    func overlongFieldsAreRefused() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 1)
        let head = try log.records()[0].hash
        let long: [(String, (text: String, hash: String), String)] = [
            ("account", Self.line(seq: 2, fields: [("account", String(repeating: "a", count: 1025))], prev: head),
             "security-log field 'account' has 1025 characters; at most 1024 are accepted (longer than append allows)"),
            ("details", Self.line(seq: 2, details: [("n", String(repeating: "x", count: 257))], prev: head),
             "security-log detail 'n' has 257 characters; at most 256 are accepted (longer than append allows)"),
            ("actor", Self.line(seq: 2, actor: "user:" + String(repeating: "u", count: 257), prev: head),
             "security-log actor name must have 1–256 characters (longer than append allows)"),
        ]
        let first = try lines(dir.logPath)[0]
        for (field, line, message) in long {
            try write(lines: [first, line.text], to: dir.logPath)
            let result = try log.verify()
            #expect(result.outcome == .broken(.init(line: 2, seq: nil, problem: .malformed(message))), "\(field): \(result)")
        }
        // Lengths count code points: an account of 1,025 of them is one character to Swift's String.count.
        let combining = "e" + String(repeating: "\u{301}", count: 1024)
        #expect(combining.count == 1)
        #expect(throws: AuditError(.invalidEntry, "")) { try log.append(SecurityLogEntry(event: .rebind, account: combining)) }
    }

    @Test("a seq beyond 64 bits or with a fraction is reported as the seq field's fault, not as 'not a JSON object'")
    func seqBeyond64Bits() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 2)
        var text = try lines(dir.logPath)
        for seq in ["18446744073709551617", "9223372036854775808", "2.5", "1e30"] {
            text[1] = text[1].replacing(#/"seq":[^,]+/#, with: "\"seq\":\(seq)")
            try write(lines: text, to: dir.logPath)
            let result = try log.verify()
            #expect(result.outcome == .broken(.init(line: 2, seq: nil, problem: .malformed("field 'seq' is not an integer from 1 to 9223372036854775807"))),
                    "seq \(seq): \(result)")
        }
    }
}
