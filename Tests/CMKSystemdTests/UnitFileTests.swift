import Foundation
import Testing

/// The shipped unit files: `systemd-analyze verify` is silent and the hardening scores ≤ 1.5
/// (cmk-syncer) and ≤ 2.0 (cmk-vault, SPEC §11; it scores far better with PrivateNetwork=yes).
@Suite("unit file checks")
struct UnitFileTests {
    /// Each shipped unit with the executable its ExecStart= names and the worst exposure accepted.
    static let units: [(file: String, binary: String, maximum: Double)] = [
        ("cmk-syncer.service", "cmk-syncer", 1.5), ("cmk-vault.service", "cmk-vault", 2.0), ("cmk-vault.socket", "cmk-vault", 0),
    ]

    @Test("systemd-analyze verify prints nothing on stderr", arguments: units.map(\.file))
    func verify(unit: String) throws {
        let syncer = try TestPaths.cmkSyncer()
        let name = try #require(Self.units.first { $0.file == unit }).binary
        let binary = URL(fileURLWithPath: syncer).deletingLastPathComponent().appendingPathComponent(name).path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "\(binary) is missing: swift build --build-tests builds it")
        _ = try TestPaths.tool("/usr/bin/systemd-analyze", package: "systemd")
        let result = try Command.run("/bin/bash", [TestPaths.scripts + "/verify-unit.sh", TestPaths.packageRoot + "/systemd/" + unit, binary])
        let parts = result.stdout.components(separatedBy: "--- stderr\n")
        let stderr = parts.count > 1 ? parts[1] : result.stdout + result.stderr
        #expect(result.status == 0, "verify exit status \(result.status): \(result.stdout)\(result.stderr)")
        #expect(stderr.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "systemd-analyze verify stderr:\n\(stderr)\(result.stderr)")
        print("unit: systemd-analyze verify systemd/\(unit) → status \(result.status), stderr empty: \(stderr.isEmpty)")
    }

    @Test("systemd-analyze security --offline=true: cmk-syncer 1.5 or better, cmk-vault 2.0 or better", arguments: units.filter { $0.file.hasSuffix(".service") }.map(\.file))
    func securityScore(unit: String) throws {
        let maximum = try #require(Self.units.first { $0.file == unit }).maximum
        _ = try TestPaths.tool("/usr/bin/systemd-analyze", package: "systemd")
        let result = try Command.run("/usr/bin/systemd-analyze", ["security", "--offline=true", "--no-pager", TestPaths.packageRoot + "/systemd/" + unit],
                                     environment: ["PATH": "/usr/bin:/bin", "SYSTEMD_COLORS": "0", "LANG": "C.UTF-8"])
        let line = try #require(result.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") },
                                "no 'Overall exposure level' line:\n\(result.stdout)\(result.stderr)")
        // "→ Overall exposure level for cmk-syncer.service: 1.1 OK 🙂"
        let number = try #require(line.firstMatch(of: #/\.service: ([0-9]+\.[0-9]+) /#), "cannot parse: \(line)")
        let score = try #require(Double(String(number.1)))
        #expect(score <= maximum, "\(unit): exposure \(score) > \(maximum); failing checks:\n\(result.stdout.split(separator: "\n").filter { $0.contains("✗") }.joined(separator: "\n"))")
        #expect(result.stderr.isEmpty, "security stderr: \(result.stderr)")
        print("unit: systemd-analyze security --offline=true → \(line.trimmingCharacters(in: .whitespaces))")
    }
}
