import Foundation
import Glibc
import Testing

/// The lean daemon (issue 20 item 3): between passes the daemon holds no clean file pages
/// (code, read-only data), docs/performance.md "Where the daemon's memory went".
@Suite("cmk-syncer as a process: resident memory between passes", .serialized)
struct ResidentCodeTests {
    /// `RssFile` (resident pages mapped from files) of `pid` in KiB.
    private func residentFileKiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        let line = status.split(separator: "\n").first { $0.hasPrefix("RssFile:") }
        return line.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
    }

    @Test("after a pass the idle daemon's file-backed resident pages drop to a few MiB, and the next pass runs as before")
    func cleanPagesReleased() async throws {
        let setup = try EmbeddedSetup(accounts: [("f", "file"), ("s", "sql"), ("a", "audit"), ("n", "analytics"), ("k", "secret-store")])
        let daemon = try DaemonProcess(arguments: ["run", "--config", setup.configPath, "--log-format", "json"], logPath: setup.root + "/daemon.log")
        try await eventually("first report") { try setup.report() != nil }
        let first = try #require(try setup.report())
        #expect(first["state"] as? String == "ok")
        // The release follows the report; the code, Foundation, libcrypto and SQLite mapped by
        // the start and the pass were about 40 MiB before it (a debug build maps more).
        try await eventually("file pages released", timeout: .seconds(10)) { (residentFileKiB(daemon.pid) ?? .max) < 8 * 1_024 }
        #expect((residentFileKiB(daemon.pid) ?? .max) < 8 * 1_024, "RssFile \(residentFileKiB(daemon.pid) ?? -1) KiB")
        // The pages fault back in: a second pass works and is released again.
        daemon.signal(SIGUSR1)
        try await eventually("pass after SIGUSR1") { try setup.report()?["syncID"] as? String != first["syncID"] as? String }
        #expect(try setup.report()?["state"] as? String == "ok")
        try await eventually("file pages released again", timeout: .seconds(10)) { (residentFileKiB(daemon.pid) ?? .max) < 8 * 1_024 }
        daemon.signal(SIGTERM)
        #expect(await daemon.wait() == 0)
    }
}
