import Foundation
import Testing

/// The shipped unit file: `systemd-analyze verify` is silent and the hardening scores ≤ 1.5.
@Suite("unit file checks")
struct UnitFileTests {
    @Test("systemd-analyze verify prints nothing on stderr")
    func verify() throws {
        let binary = try TestPaths.cmkSyncer()
        _ = try TestPaths.tool("/usr/bin/systemd-analyze", package: "systemd")
        let result = try Command.run("/bin/bash", [TestPaths.scripts + "/verify-unit.sh", TestPaths.unitFile, binary])
        let parts = result.stdout.components(separatedBy: "--- stderr\n")
        let stderr = parts.count > 1 ? parts[1] : result.stdout + result.stderr
        #expect(result.status == 0, "verify exit status \(result.status): \(result.stdout)\(result.stderr)")
        #expect(stderr.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "systemd-analyze verify stderr:\n\(stderr)\(result.stderr)")
        print("unit: systemd-analyze verify systemd/cmk-syncer.service → status \(result.status), stderr empty: \(stderr.isEmpty)")
    }

    @Test("systemd-analyze security --offline=true scores 1.5 or better")
    func securityScore() throws {
        _ = try TestPaths.tool("/usr/bin/systemd-analyze", package: "systemd")
        let result = try Command.run("/usr/bin/systemd-analyze", ["security", "--offline=true", "--no-pager", TestPaths.unitFile],
                                     environment: ["PATH": "/usr/bin:/bin", "SYSTEMD_COLORS": "0", "LANG": "C.UTF-8"])
        let line = try #require(result.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") },
                                "no 'Overall exposure level' line:\n\(result.stdout)\(result.stderr)")
        // "→ Overall exposure level for cmk-syncer.service: 1.1 OK 🙂"
        let number = try #require(line.firstMatch(of: #/\.service: ([0-9]+\.[0-9]+) /#), "cannot parse: \(line)")
        let score = try #require(Double(String(number.1)))
        #expect(score <= 1.5, "exposure \(score) > 1.5; failing checks:\n\(result.stdout.split(separator: "\n").filter { $0.contains("✗") }.joined(separator: "\n"))")
        #expect(result.stderr.isEmpty, "security stderr: \(result.stderr)")
        print("unit: systemd-analyze security --offline=true → \(line.trimmingCharacters(in: .whitespaces))")
    }
}
