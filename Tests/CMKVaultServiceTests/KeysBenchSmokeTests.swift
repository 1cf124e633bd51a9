import CMKAzureTestServer
import CMKTesting
import Foundation
import Testing

/// The benchmark's keys suite on the debug build, small (`cmk-bench run --quick --only keys
/// --fleet-accounts 6`): its code path (cmk-vault with a limit, three daemons on it through the
/// Azure provider, the security log's counts) keeps working between full runs. The figures of a
/// debug build mean nothing; the checks that must hold at any size are checked.
@Suite("cmk-bench keys suite, smoke", .serialized)
struct KeysBenchSmokeTests {
    @Test("a rotation over three daemons on cmk-vault: no failure, one unwrap of the old version per DEK")
    func smoke() throws {
        let out = NSTemporaryDirectory() + "cmk-bench-smoke-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: out) }
        let run = try ProcessRunner.run(try BuiltExecutables.path("cmk-bench"), ["run", "--quick", "--only", "keys", "--fleet-accounts", "6", "--out", out])
        let printed = String(decoding: run.output, as: UTF8.self)
        #expect(run.status == 0, "cmk-bench exited \(run.status): \(run.errors.suffix(2000))\n\(printed)")
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: out).first { $0.hasSuffix(".json") }, "no JSON in \(out)")
        let results = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/" + file))) as? [String: Any])
        let figures = try #require(results["figures"] as? [[String: Any]])
        func figure(_ prefix: String) throws -> [String: Any] {
            try #require(figures.first { ($0["name"] as? String)?.hasPrefix(prefix) == true }, "no figure '\(prefix)…' in \(printed)")
        }
        #expect(try figure("rotation failures")["value"] as? Double == 0)
        let unwraps = try figure("service unwraps of the old version")
        #expect(unwraps["value"] as? Double == 0 && unwraps["met"] as? Bool == true, "\(unwraps)")
        #expect((unwraps["detail"] as? [String: Any])?["DEKs"] as? Double == 6)
        #expect(try (figure("unwrapkey through cmk-vault")["value"] as? Double ?? 0) > 0)
        #expect(try (figure("rotation through cmk-vault")["value"] as? Double ?? 0) > 0)
    }
}
