import CMKAudit
import CMKCore
import Foundation
import Glibc
import Testing

@Suite("Security log: torn writes, permissions, concurrency")
struct SecurityLogDurabilityTests {
    @Test("a torn last line is reported as such, and the next append truncates it and says so")
    func tornTailTruncated() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        let records = try fill(log, count: 3)
        let sizeBefore = try FileManager.default.attributesOfItem(atPath: dir.logPath)[.size] as! Int
        let handle = try #require(FileHandle(forWritingAtPath: dir.logPath))
        try handle.seekToEnd()
        let partial = Data(#"{"account":"acct-4","actor":"dae"#.utf8)
        try handle.write(contentsOf: partial)
        try handle.close()

        let torn = try log.verify()
        #expect(torn.outcome == .tornTail(.init(offset: Int64(sizeBefore), byteCount: partial.count, line: 4)))
        #expect(torn.chainHolds)
        #expect(torn.verifiedCount == 3)
        #expect(try log.records() == records)

        let appended = try log.append(SecurityLogEntry(event: .daemonStarted))
        #expect(appended.seq == 5)
        let all = try log.records()
        #expect(all.count == 5)
        #expect(all[3].event == .logRepaired)
        #expect(all[3].details["action"] == "truncated")
        #expect(all[3].details["bytes"] == String(partial.count))
        #expect(all[3].details["offset"] == String(sizeBefore))
        #expect(all[3].prev == records[2].hash)
        #expect(try log.verify().outcome == .intact)
        #expect(try log.verify().verifiedCount == 5)
    }

    @Test("a last record that lost only its newline is kept and completed")
    func tornTailCompleted() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        let records = try fill(log, count: 3)
        let size = try FileManager.default.attributesOfItem(atPath: dir.logPath)[.size] as! Int
        #expect(truncate(dir.logPath, off_t(size - 1)) == 0)
        guard case .tornTail = try log.verify().outcome else { Issue.record("expected a torn tail"); return }
        try log.append(SecurityLogEntry(event: .daemonStopped))
        let all = try log.records()
        #expect(Array(all.prefix(3)) == records)
        #expect(all[3].event == .logRepaired)
        #expect(all[3].details["action"] == "completed")
        #expect(all[4].event == .daemonStopped)
        #expect(try log.verify().outcome == .intact)
    }

    @Test("a torn tail longer than one read block is found and removed")
    func longTornTail() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 100)
        let handle = try #require(FileHandle(forWritingAtPath: dir.logPath))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(repeating: 0, count: 20_000))
        try handle.close()
        guard case .tornTail(let torn) = try log.verify().outcome else { Issue.record("expected a torn tail"); return }
        #expect(torn.byteCount == 20_000)
        #expect(try log.append(SecurityLogEntry(event: .daemonStarted)).seq == 102)
        #expect(try log.verify().verifiedCount == 102)
    }

    @Test("append refuses to extend a log whose last complete line is not a record")
    func corruptLastLine() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 2)
        try write(lines: try lines(dir.logPath) + ["garbage"], to: dir.logPath)
        let before = try Data(contentsOf: URL(fileURLWithPath: dir.logPath))
        #expect(throws: AuditError(.corrupt, "")) { try log.append(SecurityLogEntry(event: .daemonStarted)) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.logPath)) == before)
    }

    @Test("a group- or world-writable log is refused", arguments: [0o620, 0o602, 0o666] as [mode_t])
    func unsafeMode(_ unsafe: mode_t) throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock())
        try fill(log, count: 1)
        #expect(chmod(dir.logPath, unsafe) == 0)
        for attempt in [{ _ = try log.append(SecurityLogEntry(event: .daemonStarted)) }, { _ = try log.records() }, { _ = try log.verify() }] as [() throws -> Void] {
            let error = try #require(throws: AuditError.self) { try attempt() }
            #expect(error.code == .permissions)
            #expect(error.category == .configuration)
            #expect(error.reason.contains("chmod 600"))
        }
        #expect(chmod(dir.logPath, 0o640) == 0)
        #expect(try log.verify().verifiedCount == 1)
    }

    @Test("a log that is not a regular file is refused")
    func notARegularFile() throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.logPath, withIntermediateDirectories: false)
        let error = try #require(throws: AuditError.self) { try SecurityLog(path: dir.logPath).verify() }
        #expect(error.code == .permissions)
    }

    @Test("a symbolic link in place of the log is refused")
    func symlink() throws {
        let dir = try TemporaryDirectory()
        try Data().write(to: URL(fileURLWithPath: dir.path + "/elsewhere"))
        #expect(Glibc.symlink(dir.path + "/elsewhere", dir.logPath) == 0)
        let error = try #require(throws: AuditError.self) { try SecurityLog(path: dir.logPath).append(SecurityLogEntry(event: .daemonStarted)) }
        #expect(error.code == .permissions)
    }

    @Test("concurrent appends through separate instances keep one chain")
    func concurrentInstances() async throws {
        let dir = try TemporaryDirectory()
        let logs = [SecurityLog(path: dir.logPath), SecurityLog(path: dir.logPath)]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                let log = logs[task % 2]
                group.addTask {
                    for index in 0..<25 {
                        try log.append(SecurityLogEntry(event: .dekMinted, account: "acct-\(task)", details: ["n": String(index)]))
                    }
                }
            }
            try await group.waitForAll()
        }
        let result = try logs[0].verify()
        #expect(result.outcome == .intact)
        #expect(result.verifiedCount == 200)
        #expect(try logs[1].records().map(\.seq) == Array(1...200))
    }

    @Test("another process appending under the same lock interleaves into one chain")
    func concurrentProcess() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.logPath
        let log = SecurityLog(path: path)
        try log.append(SecurityLogEntry(event: .daemonStarted))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try runPython(pythonAppender, [path, "150", "carol"]) }
            for _ in 0..<3 {
                group.addTask { for _ in 0..<50 { try log.append(SecurityLogEntry(event: .keyRotationNoticed, key: "k")) } }
            }
            try await group.waitForAll()
        }
        let result = try log.verify()
        #expect(result.outcome == .intact)
        #expect(result.verifiedCount == 301)
        let records = try log.records()
        #expect(records.filter { $0.actor == .user("carol") }.count == 150)
        #expect(records.filter { $0.actor == .daemon }.count == 151)
        #expect(try runPython(pythonVerifier, [path]) == "301\n")
    }
}
