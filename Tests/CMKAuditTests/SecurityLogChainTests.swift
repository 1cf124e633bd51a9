import CMKAudit
import CMKCore
import Foundation
import Testing

@Suite("Security log: chain and verification")
struct SecurityLogChainTests {
    @Test("N appends form one chain that verifies")
    func appendsVerify() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        let records = try fill(log, count: 20)
        #expect(records.map(\.seq) == Array(1...20))
        #expect(records[0].prev == SecurityRecord.genesisHash)
        for (previous, next) in zip(records, records.dropFirst()) { #expect(next.prev == previous.hash) }
        let result = try log.verify()
        #expect(result.outcome == .intact)
        #expect(result.verifiedCount == 20)
        #expect(result.headHash == records.last!.hash)
        #expect(mode(dir.logPath) == 0o600)
        #expect(try log.records() == records)
    }

    @Test("an empty or missing log verifies with no records")
    func missingLog() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath)
        #expect(try log.verify() == VerificationResult(outcome: .intact, verifiedCount: 0, headHash: SecurityRecord.genesisHash, warnings: []))
        #expect(try log.records().isEmpty)
    }

    @Test("editing a field of a middle record is a hash mismatch at that record")
    func editedField() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 5)
        var text = try lines(dir.logPath)
        #expect(text[2].contains("\"account\":\"acct-3\""))
        text[2] = text[2].replacingOccurrences(of: "\"account\":\"acct-3\"", with: "\"account\":\"acct-9\"")
        try write(lines: text, to: dir.logPath)
        let result = try log.verify()
        guard case .broken(let broken) = result.outcome else { Issue.record("expected a broken chain, got \(result)"); return }
        #expect(broken.line == 3)
        #expect(broken.seq == 3)
        guard case .hashMismatch = broken.problem else { Issue.record("expected a hash mismatch, got \(broken)"); return }
        #expect(result.verifiedCount == 2)
        #expect(!result.chainHolds)
    }

    @Test("a record edited and re-hashed breaks the next record's prev")
    func forgedRecord() throws {
        let dir = try TemporaryDirectory()
        let clock = ManualClock()
        let log = SecurityLog(path: dir.logPath, clock: clock)
        let records = try fill(log, count: 5)
        let original = records[2]
        var entry = original.entry
        entry.version = "v-forged"
        let forged = SecurityRecord(seq: original.seq, time: original.time, entry: entry, prev: original.prev)
        var text = try lines(dir.logPath)
        text[2] = String(decoding: forged.canonicalBytes(includingHash: true), as: UTF8.self)
        try write(lines: text, to: dir.logPath)
        let result = try log.verify()
        #expect(result.outcome == .broken(.init(line: 4, seq: 4, problem: .prevMismatch(expected: forged.hash, found: original.hash))))
        #expect(result.verifiedCount == 3)
    }

    @Test("deleting a middle line names the record after it")
    func deletedLine() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 5)
        var text = try lines(dir.logPath)
        text.remove(at: 2)
        try write(lines: text, to: dir.logPath)
        #expect(try log.verify().outcome == .broken(.init(line: 3, seq: 4, problem: .seqGap(expected: 3, found: 4))))
    }

    @Test("deleting a middle line and renumbering is caught by prev")
    func deletedAndRenumbered() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        let records = try fill(log, count: 4)
        // Replace records 3 and 4 by a re-hashed copy of record 4 with seq 3.
        let moved = SecurityRecord(seq: 3, time: records[3].time, entry: records[3].entry, prev: records[3].prev)
        var text = try lines(dir.logPath)
        text.removeLast(2)
        text.append(String(decoding: moved.canonicalBytes(includingHash: true), as: UTF8.self))
        try write(lines: text, to: dir.logPath)
        #expect(try log.verify().outcome == .broken(.init(line: 3, seq: 3, problem: .prevMismatch(expected: records[1].hash, found: records[2].hash))))
    }

    @Test("swapping two lines names the first moved one")
    func reorderedLines() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 5)
        var text = try lines(dir.logPath)
        text.swapAt(1, 2)
        try write(lines: text, to: dir.logPath)
        #expect(try log.verify().outcome == .broken(.init(line: 2, seq: 3, problem: .seqGap(expected: 2, found: 3))))
    }

    @Test("a line that is not a record is malformed", arguments: [
        "not json",
        "",
        #"{"seq":2}"#,
    ])
    func malformedLine(_ replacement: String) throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 3)
        var text = try lines(dir.logPath)
        text[1] = replacement
        try write(lines: text, to: dir.logPath)
        let result = try log.verify()
        guard case .broken(let broken) = result.outcome, case .malformed = broken.problem else {
            Issue.record("expected a malformed record, got \(result)"); return
        }
        #expect(broken.line == 2)
        #expect(throws: AuditError(.corrupt, "")) { try log.records() }
    }

    @Test("extra whitespace, an unknown field or an escaped slash make a line non-canonical")
    func nonCanonical() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        let records = try fill(log, count: 2)
        let canonical = String(decoding: records[1].canonicalBytes(includingHash: true), as: UTF8.self)
        for variant in [
            canonical.replacingOccurrences(of: "\"seq\":2", with: "\"seq\": 2"),
            canonical.replacingOccurrences(of: "{\"account\"", with: "{\"extra\":\"x\",\"account\""),
            canonical.replacingOccurrences(of: "\"details\":{", with: "\"details\":{\"p\":\"a\\/b\","),
        ] {
            try write(lines: [try lines(dir.logPath)[0], variant], to: dir.logPath)
            let result = try log.verify()
            guard case .broken(let broken) = result.outcome, case .malformed = broken.problem else {
                Issue.record("expected a malformed record for \(variant), got \(result)"); continue
            }
            #expect(broken.line == 2)
        }
    }

    @Test("a clock stepped back is a warning, not a break")
    func timeGoingBackwards() throws {
        let dir = try TemporaryDirectory()
        let clock = ManualClock()
        let log = SecurityLog(path: dir.logPath, clock: clock)
        try log.append(SecurityLogEntry(event: .daemonStarted))
        clock.advance(by: -60)
        try log.append(SecurityLogEntry(event: .daemonStopped))
        let result = try log.verify()
        #expect(result.outcome == .intact)
        #expect(result.verifiedCount == 2)
        #expect(result.warnings == [.timeWentBackwards(seq: 2, line: 2)])
    }

    @Test("records(since:) returns records at or after the time, oldest first")
    func recordsSince() throws {
        let dir = try TemporaryDirectory()
        let clock = ManualClock()
        let log = SecurityLog(path: dir.logPath, clock: clock)
        let records = try fill(log, count: 5, clock: clock)
        #expect(try log.records(since: records[2].time).map(\.seq) == [3, 4, 5])
        #expect(try log.records(since: records[2].time.addingTimeInterval(0.001)).map(\.seq) == [4, 5])
        #expect(try log.records(since: records[4].time.addingTimeInterval(1)).isEmpty)
        #expect(try log.records(since: nil).count == 5)
    }
}
