import Foundation
import Testing

/// `cmkctl` and a security log that cannot be appended (issue 14, defect 5): key changes are
/// refused before anything changes, `status` shows the daemon's DEGRADED verdict, and
/// `audit verify` says where to cut a broken log and when a started log has vanished.
@Suite("cmkctl and a broken security log")
struct SecurityLogCLITests {
    private func appendGarbage(_ harness: Harness) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: harness.state + "/security.log"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("garbage\n".utf8))
        try handle.close()
    }

    private func versions(_ harness: Harness) throws -> [String] {
        let listing = try harness.ctl(["keys", "list", "--json"])
        #expect(listing.code == 0, "\(listing.stderr)")
        return try #require(try listing.object()["versions"] as? [[String: Any]]).compactMap { $0["version"] as? String }
    }

    @Test("keys rotate, pull and disable refuse with exit 1 before changing anything while the log cannot be appended")
    func keyChangesRefused() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        #expect(try harness.once().code == 0)
        let before = try versions(harness)
        try appendGarbage(harness)
        let log = try Data(contentsOf: URL(fileURLWithPath: harness.state + "/security.log"))

        for command in [["keys", "rotate"], ["keys", "pull"], ["keys", "disable", before[0], "--force"]] {
            let result = try harness.ctl(command)
            #expect(result.code == 1, "\(command): \(result.text) \(result.stderr)")
            #expect(result.stderr.hasPrefix("cmkctl: refused, nothing was changed: every key change is recorded in the security log, and it cannot be appended: audit.corrupt"),
                    "\(command): \(result.stderr)")
        }
        #expect(try versions(harness) == before)
        let listing = try harness.ctl(["keys", "list", "--json"]).object()
        #expect(listing["state"] as? String == "present")
        #expect((listing["versions"] as? [[String: Any]])?.allSatisfy { $0["enabled"] as? Bool == true } == true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: harness.state + "/security.log")) == log)
    }

    @Test("status shows the daemon's DEGRADED verdict on the log (exit 3); audit verify names the byte to cut at, and after the cut key changes work again")
    func statusAndRepair() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        #expect(try harness.once().code == 0)
        let good = try Data(contentsOf: URL(fileURLWithPath: harness.state + "/security.log")).count
        try appendGarbage(harness)
        #expect(try harness.once().code == 3)

        // No daemon runs after `run --once`: --report-only judges the report alone.
        let status = try harness.ctl(["status", "--report-only"])
        #expect(status.code == 3)
        #expect(status.text.contains("state: DEGRADED"))
        #expect(status.text.contains("cause: security log cannot be appended (audit.corrupt: a record is broken; run cmkctl audit verify)"))
        let json = try harness.ctl(["status", "--json"]).object()
        #expect((json["report"] as? [String: Any])?["securityLog"] as? String == "audit.corrupt: a record is broken; run cmkctl audit verify")

        let verify = try harness.ctl(["audit", "verify"])
        #expect(verify.code == 1)
        #expect(verify.stderr.contains("BROKEN at line"))
        #expect(verify.stderr.contains("`truncate -s \(good)`"), "\(verify.stderr)")

        #expect(truncate(harness.state + "/security.log", off_t(good)) == 0)
        #expect(try harness.ctl(["audit", "verify"]).code == 0)
        let rotate = try harness.ctl(["keys", "rotate"])
        #expect(rotate.code == 0, "\(rotate.stderr)")
        #expect(try harness.once().code == 0)
        #expect(try harness.ctl(["status", "--report-only"]).code == 0)
    }

    @Test("audit verify and audit list fail on a started log that was deleted or emptied; keys create is refused")
    func vanished() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        #expect(try harness.once().code == 0)
        let path = harness.state + "/security.log"
        #expect(truncate(path, 0) == 0)
        let emptied = try harness.ctl(["audit", "verify"])
        #expect(emptied.code == 1)
        #expect(emptied.stderr.contains("VANISHED: the log was started on"))
        #expect(emptied.stderr.contains("holds no record any more"))
        try FileManager.default.removeItem(atPath: path)
        let missing = try harness.ctl(["audit", "verify"])
        #expect(missing.code == 1)
        #expect(missing.stderr.contains("no longer exists"))
        let list = try harness.ctl(["audit", "list"])
        #expect(list.code == 1)
        #expect(list.stderr.contains("audit.missing"))
        let rotate = try harness.ctl(["keys", "rotate"])
        #expect(rotate.code == 1)
        #expect(rotate.stderr.contains("refused, nothing was changed"))
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
