import CMKAudit
import Foundation
import Glibc
import Testing

/// A log that cannot be appended says so before anything is written (issue 14, defect 5), and a
/// log that was started cannot vanish, be emptied or be replaced unnoticed (its anchor).
@Suite("Security log: appendability and the anchor")
struct SecurityLogAppendabilityTests {
    private func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    private func appendRaw(_ text: String, to path: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    @Test("a garbage line after the last record: requireAppendable and append refuse with audit.corrupt and write nothing")
    func garbageLine() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 3)
        try appendRaw("garbage\n", to: dir.logPath)
        let before = try bytes(dir.logPath)
        let check = try #require(throws: AuditError.self) { try log.requireAppendable() }
        #expect(check.code == .corrupt)
        #expect(check.summary == "audit.corrupt: a record is broken; run cmkctl audit verify")
        let append = try #require(throws: AuditError.self) { try log.append(SecurityLogEntry(event: .daemonStarted)) }
        #expect(append.code == .corrupt)
        #expect(try bytes(dir.logPath) == before)
    }

    @Test("a last record whose content was edited is not extended")
    func alteredLastRecord() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 3)
        var text = try lines(dir.logPath)
        text[2] = text[2].replacingOccurrences(of: #""objects":"3""#, with: #""objects":"4""#)
        try write(lines: text, to: dir.logPath)
        #expect(throws: AuditError(.corrupt, "")) { try log.requireAppendable() }
        let error = try #require(throws: AuditError.self) { try log.append(SecurityLogEntry(event: .daemonStarted)) }
        #expect(error.reason.contains("does not match its hash"))
        #expect(try lines(dir.logPath).count == 3)
    }

    @Test("last two records that do not chain (one deleted before the last) are not extended")
    func brokenChainEnd() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 4)
        var text = try lines(dir.logPath)
        text.remove(at: 2)
        try write(lines: text, to: dir.logPath)
        let error = try #require(throws: AuditError.self) { try log.append(SecurityLogEntry(event: .daemonStarted)) }
        #expect(error.code == .corrupt)
        #expect(error.reason.contains("do not form a chain"))
        #expect(try lines(dir.logPath).count == 3)
    }

    @Test("a torn last line is appendable (the next append repairs it)")
    func tornTailIsAppendable() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 2)
        try appendRaw(#"{"seq":3,"ti"#, to: dir.logPath)
        try log.requireAppendable()
        try log.append(SecurityLogEntry(event: .daemonStarted))
        #expect(try log.verify().outcome == .intact)
    }

    @Test("a log group or others may write, or a symbolic link in its place, is not appendable")
    func permissions() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try log.requireAppendable()
        try fill(log, count: 1)
        #expect(chmod(dir.logPath, 0o666) == 0)
        let error = try #require(throws: AuditError.self) { try log.requireAppendable() }
        #expect(error.code == .permissions)
        #expect(error.reason.contains("chmod 600"))
        #expect(chmod(dir.logPath, 0o640) == 0)
        try log.requireAppendable()

        let link = SecurityLog(path: dir.path + "/link.log", clock: ManualClock())
        #expect(symlink(dir.logPath, link.path) == 0)
        #expect(throws: AuditError(.permissions, "")) { try link.requireAppendable() }
    }

    @Test("the first append writes the anchor; a log older than anchors gets one at its next append")
    func anchorWritten() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        let first = try fill(log, count: 2)[0]
        let anchor = try #require(try JSONSerialization.jsonObject(with: bytes(dir.logPath + ".anchor")) as? [String: Any])
        #expect(anchor["firstHash"] as? String == first.hash)
        #expect(mode(dir.logPath + ".anchor") == 0o644)

        // An existing log without an anchor (written before anchors existed) is adopted.
        try FileManager.default.removeItem(atPath: dir.logPath + ".anchor")
        try log.append(SecurityLogEntry(event: .daemonStarted))
        let adopted = try #require(try JSONSerialization.jsonObject(with: bytes(dir.logPath + ".anchor")) as? [String: Any])
        #expect(adopted["firstHash"] as? String == first.hash)
    }

    @Test("a started log that vanished is an error for append, records, verify and requireAppendable; append does not start a new one")
    func vanished() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 2)
        try FileManager.default.removeItem(atPath: dir.logPath)

        guard case .vanished(let vanished) = try log.verify().outcome else { Issue.record("expected vanished"); return }
        #expect(!vanished.emptied)
        #expect(try !log.verify().chainHolds)
        #expect(throws: AuditError(.missing, "")) { try log.records() }
        #expect(throws: AuditError(.missing, "")) { try log.requireAppendable() }
        let error = try #require(throws: AuditError.self) { try log.append(SecurityLogEntry(event: .daemonStarted)) }
        #expect(error.code == .missing)
        #expect(error.reason.contains("no longer exists"))
        #expect(!FileManager.default.fileExists(atPath: dir.logPath))
    }

    @Test("a started log truncated to nothing is an error, not an empty intact log")
    func emptied() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 2)
        #expect(truncate(dir.logPath, 0) == 0)
        guard case .vanished(let vanished) = try log.verify().outcome else { Issue.record("expected vanished"); return }
        #expect(vanished.emptied)
        #expect(throws: AuditError(.missing, "")) { try log.records() }
        #expect(throws: AuditError(.missing, "")) { try log.requireAppendable() }
        #expect(throws: AuditError(.missing, "")) { try log.append(SecurityLogEntry(event: .daemonStarted)) }
        #expect(try bytes(dir.logPath).isEmpty)
    }

    @Test("a started log replaced by another chain breaks at line 1 and is not extended")
    func replaced() throws {
        let dir = try TemporaryDirectory()
        let clock = ManualClock()
        let log = SecurityLog(path: dir.logPath, clock: clock)
        try fill(log, count: 2)
        let other = dir.path + "/other.log"
        clock.advance(by: 60)
        try fill(SecurityLog(path: other, clock: clock), count: 3)
        try FileManager.default.removeItem(atPath: dir.logPath)
        try FileManager.default.copyItem(atPath: other, toPath: dir.logPath)

        guard case .broken(let broken) = try log.verify().outcome, case .notTheAnchoredFirstRecord = broken.problem else {
            Issue.record("expected a broken first record: \(try log.verify().outcome)")
            return
        }
        #expect(broken.line == 1)
        let error = try #require(throws: AuditError.self) { try log.append(SecurityLogEntry(event: .daemonStarted)) }
        #expect(error.code == .corrupt)
        #expect(error.reason.contains("was replaced"))
    }

    @Test("verifiedBytes: cutting a broken log to it leaves an intact chain that can be appended")
    func cutToVerifiedBytes() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 3)
        let good = try bytes(dir.logPath).count
        try appendRaw("garbage\nmore garbage\n", to: dir.logPath)
        let result = try log.verify()
        #expect(result.verifiedBytes == Int64(good))
        #expect(truncate(dir.logPath, off_t(result.verifiedBytes)) == 0)
        try log.requireAppendable()
        try log.append(SecurityLogEntry(event: .daemonStarted))
        #expect(try log.verify().outcome == .intact)
        #expect(try log.verify().verifiedCount == 4)
    }

    @Test("a state directory group or others may write is refused in FileAccessRule's words", arguments: [0o777, 0o770, 0o1777] as [mode_t])
    func unprotectedDirectory(_ unsafe: mode_t) throws {
        let dir = try TemporaryDirectory()
        #expect(chmod(dir.path, unsafe) == 0)
        let error = try #require(throws: AuditError.self) { try SecurityLog.requireProtectedDirectory(dir.path) }
        #expect(error.code == .permissions)
        #expect(error.category == .configuration)
        #expect(error.reason.contains("state directory '\(dir.path)' has mode"))
        #expect(error.reason.contains("which lets group or others write it; fix it with: chmod 700 '\(dir.path)'"))
        #expect(chmod(dir.path, 0o755) == 0)
        try SecurityLog.requireProtectedDirectory(dir.path)
    }
}

@Suite("Security log: recorded bindings and recovered records")
struct RecordedBindingsTests {
    @Test("the log's last rebind and dek-minted per account are read back")
    func scan() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try log.append(SecurityLogEntry(event: .rebind, account: "a", key: "k", version: "v1", details: ["created": "true"]))
        try log.append(SecurityLogEntry(event: .rebind, account: "b", key: "k", version: "v1"))
        try log.append(SecurityLogEntry(event: .rebind, account: "a", key: "k", version: "v2", previousVersion: "v1"))
        try log.append(SecurityLogEntry(event: .dekMinted, account: "a", key: "k", version: "v2", details: ["dek": "d2"]))
        try log.append(SecurityLogEntry(event: .operatorAction, key: "k", details: ["note": #""event":"rebind""#]))
        let bindings = try log.recordedBindings()
        #expect(bindings.accounts["a"] == .init(version: "v2", mintedDEK: "d2"))
        #expect(bindings.accounts["b"] == .init(version: "v1", mintedDEK: nil))
        #expect(bindings.accounts.count == 2)
    }

    @Test("a binding the log names needs nothing; another gets rebind and dek-minted, marked recovered")
    func missingRecords() {
        var bindings = RecordedBindings()
        bindings.note(SecurityLogEntry(event: .rebind, account: "a", key: "k", version: "v1"))
        #expect(bindings.missingRecords(account: "a", key: "k", binding: "v1", generation: 1, activeDEK: "d1", activeDEKVersion: "v1", syncID: "s").isEmpty)

        let entries = bindings.missingRecords(account: "a", key: "k", binding: "v2", generation: 2, activeDEK: "d2", activeDEKVersion: "v2", syncID: "s")
        #expect(entries.map(\.event) == [.rebind, .dekMinted])
        #expect(entries[0].version == "v2" && entries[0].previousVersion == "v1")
        #expect(entries[0].details == ["recovered": "true", "generation": "2", "sync_id": "s"])
        #expect(entries[1].details["dek"] == "d2" && entries[1].details["recovered"] == "true")

        // An account the log never mentioned (its creation record was lost): a rebind, no dek-minted.
        let created = bindings.missingRecords(account: "new", key: "k", binding: "v2", generation: 1, activeDEK: "d9", activeDEKVersion: "v2", syncID: "s")
        #expect(created.map(\.event) == [.rebind])
        #expect(created[0].previousVersion == nil)

        // A DEK already recorded as minted is not recorded again.
        bindings.note(SecurityLogEntry(event: .dekMinted, account: "a", key: "k", version: "v2", details: ["dek": "d2"]))
        #expect(bindings.missingRecords(account: "a", key: "k", binding: "v2", generation: 2, activeDEK: "d2", activeDEKVersion: "v2", syncID: "s").map(\.event) == [.rebind])
    }
}
