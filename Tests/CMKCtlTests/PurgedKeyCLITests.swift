import Foundation
import Testing

/// `cmkctl keys purge` then any command with `create: true` leaves the key purged; only
/// `keys create --replace-purged` makes it again, recorded in the security log (issue 14, defect 2).
@Suite("cmkctl: a purged key stays purged")
struct PurgedKeyCLITests {
    @Test func purgedKeyIsReplacedOnlyExplicitly() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let yaml = try String(contentsOfFile: harness.config, encoding: .utf8)
            .replacingOccurrences(of: "retention-days: 7", with: "retention-days: 7\n    purge-protection: false")
        try yaml.write(toFile: harness.config, atomically: true, encoding: .utf8)
        #expect(try harness.once().code == 0)
        #expect(try harness.ctl(["keys", "pull"]).code == 0)
        let purge = try harness.ctl(["keys", "purge", "--yes"])
        #expect(purge.code == 0, "\(purge.stderr)")

        // Every command builds the service graph with create: true; none may make the key again.
        for _ in 0..<2 {
            let list = try harness.ctl(["keys", "list", "--json"])
            #expect(try list.object()["state"] as? String == "missing", "\(list.text) \(list.stderr)")
        }
        #expect(try harness.once().code == 1)
        #expect(try harness.ctl(["keys", "list", "--json"]).object()["state"] as? String == "missing")

        let plain = try harness.ctl(["keys", "create"])
        #expect(plain.code == 1)
        #expect(plain.stderr.contains("was purged on"), "\(plain.stderr)")
        #expect(plain.stderr.contains("--replace-purged"), "\(plain.stderr)")

        let replace = try harness.ctl(["keys", "create", "--replace-purged"])
        #expect(replace.code == 0, "\(replace.stderr)")
        #expect(replace.stderr.contains("cannot read anything encrypted under the old one"))
        #expect(try harness.ctl(["keys", "list", "--json"]).object()["state"] as? String == "present")

        let audit = try harness.ctl(["audit", "list", "--json"])
        let records = try #require(try audit.json() as? [[String: Any]])
        let replaced = records.first { ($0["details"] as? [String: String])?["operation"] == "keys create --replace-purged" }
        #expect(replaced?["event"] as? String == "operator-action")
        #expect((replaced?["details"] as? [String: String])?["replaced"]?.hasPrefix("purged on ") == true)
        #expect(try harness.ctl(["audit", "verify"]).code == 0)
    }
}
