import Foundation
import Testing

/// Purge protection against the clock of whoever pulls (issue 24, defect 9), on the real cmkctl
/// under libfaketime (`faketime`, installed by scripts/install-deps.sh): a pull made with the clock
/// a year behind must not make the key purgeable at once.
@Suite("cmkctl: purge protection with a clock that lies")
struct PurgeClockCLITests {
    static let faketime = "/usr/bin/faketime"

    /// Runs `faketime -f OFFSET cmkctl ARGS --config <config>`.
    func ctl(_ harness: Harness, offset: String, _ arguments: [String]) throws -> Harness.Result {
        guard FileManager.default.isExecutableFile(atPath: Self.faketime) else {
            Issue.record("\(Self.faketime) is missing: run scripts/install-deps.sh (Debian package faketime)")
            throw Harness.HarnessError.missingBinary(Self.faketime)
        }
        return try Harness.run(Self.faketime, ["-f", offset, try Harness.binary("cmkctl")] + arguments + ["--config", harness.config])
    }

    @Test("keys pull a year in the past, then keys purge --yes now: refused until the whole retention has passed")
    func pullWithClockBehind() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        #expect(try harness.once().code == 0)
        let pull = try ctl(harness, offset: "-365d", ["keys", "pull"])
        #expect(pull.code == 0, "\(pull.stderr)")

        let listed = try harness.ctl(["keys", "list", "--json"]).object()
        let deleted = try #require(listed["deleted"] as? [String: Any], "\(listed)")
        let purgeDate = try #require((deleted["scheduledPurgeDate"] as? String).flatMap { try? Date($0, strategy: .iso8601) })
        #expect(purgeDate > Date().addingTimeInterval(6 * 86_400), "scheduled purge \(purgeDate) should be 7 days from now")

        for offset in ["+0", "-365d", "+6d"] {
            let purge = try ctl(harness, offset: offset, ["keys", "purge", "--yes"])
            #expect(purge.code == 1, "purge at \(offset) was not refused: \(purge.stderr)")
            #expect(purge.stderr.contains("protected from purge until"), "\(purge.stderr)")
        }
        #expect(try harness.ctl(["keys", "list", "--json"]).object()["state"] as? String == "deleted")
        // The protection is a date, not a block: after the retention the purge goes through.
        let later = try ctl(harness, offset: "+8d", ["keys", "purge", "--yes"])
        #expect(later.code == 0, "\(later.stderr)")
    }

    @Test("a key made a year and more ago, pulled with the clock a year behind: the file system's clock dates the pull")
    func oldKeyPulledWithClockBehind() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        // The key's whole history is 400 days old by its own dates.
        let first = try Harness.run(Self.faketime, ["-f", "-400d", try Harness.binary("cmk-syncer"), "run", "--once", "--config", harness.config])
        #expect(first.code == 0, "\(first.stderr)")
        let pull = try ctl(harness, offset: "-365d", ["keys", "pull"])
        #expect(pull.code == 0, "\(pull.stderr)")
        let purge = try harness.ctl(["keys", "purge", "--yes"])
        #expect(purge.code == 1, "purge was not refused: \(purge.stderr)")
        #expect(purge.stderr.contains("protected from purge until"), "\(purge.stderr)")
        #expect(try harness.ctl(["keys", "list", "--json"]).object()["state"] as? String == "deleted")
    }
}
