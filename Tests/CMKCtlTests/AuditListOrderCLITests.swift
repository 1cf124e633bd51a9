import CMKAudit
import CMKCore
import Foundation
import Synchronization
import Testing

/// `cmkctl audit list --since` and records dated out of order (issue 24, defect 18): a record
/// written after the clock was stepped back used to be left out without a word while
/// `audit verify` warned about it.
@Suite("cmkctl audit list and records out of order")
struct AuditListOrderCLITests {
    private final class SteppedClock: WallClock {
        let times: Mutex<[Date]>
        init(times: [Date]) { self.times = Mutex(times) }
        func now() -> Date { times.withLock { $0.removeFirst() } }
    }

    /// Five records at t0, t0+100 s, t0+200 s, then (clock stepped back) t0-1000 s and t0+50 s.
    private func writeLog(_ harness: Harness, start t0: Date) throws {
        try FileManager.default.createDirectory(atPath: harness.state, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let offsets: [TimeInterval] = [0, 100, 200, -1000, 50]
        let log = SecurityLog(path: harness.state + "/security.log", clock: SteppedClock(times: offsets.map { t0.addingTimeInterval($0) }))
        for index in offsets.indices {
            try log.append(SecurityLogEntry(event: .operatorAction, actor: .user("tester"), details: ["n": String(index + 1)]))
        }
    }

    @Test("--since lists the back-dated records that follow listed ones, marks them and says so")
    func listsOutOfOrderRecords() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let t0 = Date(timeIntervalSince1970: 1_780_000_000)
        try writeLog(harness, start: t0)
        let since = t0.addingTimeInterval(150).ISO8601Format()

        let text = try harness.ctl(["audit", "list", "--since", since])
        #expect(text.code == 0, "\(text.stderr)")
        let lines = text.text.split(separator: "\n")
        #expect(lines.map { $0.split(separator: " ").first.map(String.init) ?? "" } == ["3", "4", "5"], "\(text.text)")
        #expect(lines.filter { $0.contains("out of order") }.count == 2)
        #expect(text.stderr.contains("seq 4, 5 are dated before --since"), "\(text.stderr)")

        let json = try harness.ctl(["audit", "list", "--since", since, "--json"])
        #expect(json.code == 0, "\(json.stderr)")
        let records = try #require(try json.json() as? [[String: Any]])
        #expect(records.compactMap { $0["seq"] as? Int } == [3, 4, 5])
        #expect(records.compactMap { $0["outOfOrder"] as? Bool } == [true, true])
        #expect(records.first?["outOfOrder"] == nil)

        // Verify warns about the same records; without --since nothing is marked.
        let verify = try harness.ctl(["audit", "verify"])
        #expect(verify.code == 0)
        #expect(verify.stderr.contains("seq 4"))
        let all = try harness.ctl(["audit", "list"])
        #expect(all.text.split(separator: "\n").count == 5)
        #expect(!all.text.contains("out of order") && !all.stderr.contains("note"))
    }
}
