import Foundation
import Testing

/// The real `cmk-syncer` with its state directory on a small tmpfs that fills up (issue 24,
/// defect 5): the security-log records of two rotations made while the disk is full used to be
/// dropped for good (`audit verify` still said "chain intact"). Now they wait in memory and are
/// written, in order, once space returns.
///
/// The tmpfs is mounted in a private mount namespace (`unshare --mount`) around the daemon, never
/// on the host's mounts; the test reaches into it with `nsenter --mount`. Needs root (as CI has).
@Suite("cmk-syncer and a full state disk", .serialized)
struct SecurityLogFullDiskTests {
    static let accounts = ["files-1", "files-2"]

    final class Setup {
        let root = NSTemporaryDirectory() + "cmk-fulldisk-" + UUID().uuidString
        var state: String { root + "/state" }
        var daemonConfig: String { root + "/daemon.yaml" }
        var ctlConfig: String { root + "/ctl.yaml" }
        var log: String { root + "/daemon.log" }

        init() throws {
            for directory in [root, state, root + "/ctl-state", root + "/accounts"] {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            // Only the state directory (status, security log, locks) is on the tmpfs: the vault and
            // the accounts stay writable, so rotations and rebinds go on while the log cannot.
            func config(state: String) -> String {
                let accounts = SecurityLogFullDiskTests.accounts
                    .map { "  - {name: \($0), kind: file, driver: directory, location: \(root)/accounts/\($0), create: true}" }
                    .joined(separator: "\n")
                return """
                    state-directory: \(state)
                    vault:
                      provider: local
                      local: {directory: \(root)/vault, master-key-file: \(root)/master.key, create: true}
                    accounts:
                    \(accounts)
                    sync: {interval: 10m, jitter: 0%}
                    """
            }
            try config(state: state).write(toFile: daemonConfig, atomically: true, encoding: .utf8)
            try config(state: root + "/ctl-state").write(toFile: ctlConfig, atomically: true, encoding: .utf8)
        }

        deinit { try? FileManager.default.removeItem(atPath: root) }
    }

    /// Runs `program arguments`, returns (status, stdout + stderr).
    @discardableResult
    private func run(_ program: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// Runs a command inside the daemon's mount namespace.
    private func inside(_ pid: Int32, _ arguments: [String]) throws -> (Int32, String) {
        try run("/usr/bin/nsenter", ["--mount", "--target", "\(pid)", "--"] + arguments)
    }

    private func passes(_ setup: Setup) -> Int {
        ((try? String(contentsOfFile: setup.log, encoding: .utf8)) ?? "").components(separatedBy: "Sync pass finished.").count - 1
    }

    private func pass(_ setup: Setup, _ daemon: Process) async throws {
        let before = passes(setup)
        kill(daemon.processIdentifier, SIGUSR1)
        try await eventually("pass \(before + 1) finishes", timeout: .seconds(60)) { passes(setup) > before }
    }

    @Test("records of two rotations on a full state disk are written once space returns, and the chain verifies")
    func recordsWaitForSpace() async throws {
        try #require(getuid() == 0, "mounting a tmpfs in a private mount namespace needs root (CI runs as root)")
        let setup = try Setup()
        let daemon = try startWrapped("/usr/bin/unshare", [
            "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
            "mount -t tmpfs -o size=1m,mode=0700 cmk-test-state \"$1\" && exec \"$2\" run --config \"$3\"", "sh",
            setup.state, try DaemonProcess.binary("cmk-syncer"), setup.daemonConfig,
        ], log: setup.log)
        defer {
            if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) }
            daemon.waitUntilExit()
        }
        let pid = daemon.processIdentifier
        try await eventually("the first pass finishes", timeout: .seconds(60)) { passes(setup) >= 1 }

        // Fill the tmpfs (dd stops at ENOSPC), then rotate twice with a pass after each.
        let (_, filled) = try inside(pid, ["/bin/dd", "if=/dev/zero", "of=\(setup.state)/fill", "bs=4k"])
        #expect(filled.contains("No space left on device"), "\(filled)")
        var versions: [String] = []
        for _ in 0..<2 {
            let (code, output) = try run(try DaemonProcess.binary("cmkctl"), ["keys", "rotate", "--config", setup.ctlConfig])
            #expect(code == 0, "\(output)")
            try await pass(setup, daemon)
            let listed = try run(try DaemonProcess.binary("cmkctl"), ["keys", "list", "--json", "--config", setup.ctlConfig]).1
            let all = (try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [String: Any])?["versions"] as? [[String: Any]] ?? []
            let current = try #require(all.first { $0["current"] as? Bool == true }?["version"] as? String, "\(listed)")
            versions.append(current)
        }
        let full = (try? String(contentsOfFile: setup.log, encoding: .utf8)) ?? ""
        #expect(full.contains("they wait in memory"), "the daemon did not say that records wait")
        // A few records may still fit in the last page of the log; the rest must wait.
        let (_, during) = try inside(pid, ["/bin/cat", setup.state + "/security.log"])
        let recordsDuring = during.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let writtenDuring = Set(recordsDuring.compactMap { $0["hash"] as? String })
        let rebindsDuring = recordsDuring.filter { $0["event"] as? String == "rebind" && $0["version"] as? String == versions[1] }
        #expect(rebindsDuring.count < Self.accounts.count, "the log had room after all; the test proves nothing")

        // Space returns: the next pass writes what waited.
        _ = try inside(pid, ["/bin/rm", "-f", "\(setup.state)/fill"])
        try await pass(setup, daemon)
        let (_, log) = try inside(pid, ["/bin/cat", setup.state + "/security.log"])
        let records = log.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        for version in versions {
            let noticed = records.filter { $0["event"] as? String == "key-rotation-noticed" && $0["version"] as? String == version }
            #expect(noticed.count == 1, "key-rotation-noticed for \(version)")
            for account in Self.accounts {
                let rebinds = records.filter { $0["event"] as? String == "rebind" && $0["account"] as? String == account && $0["version"] as? String == version }
                #expect(rebinds.count == 1, "rebind of \(account) to \(version)")
                #expect(rebinds.allSatisfy { writtenDuring.contains($0["hash"] as? String ?? "") || ($0["details"] as? [String: String])?["occurred"] != nil },
                        "a rebind written late says when it occurred")
                let minted = records.filter { $0["event"] as? String == "dek-minted" && $0["account"] as? String == account && $0["version"] as? String == version }
                #expect(minted.count == 1, "dek-minted of \(account) under \(version)")
            }
        }
        let (verifyCode, verify) = try inside(pid, [try DaemonProcess.binary("cmkctl"), "audit", "verify", "--config", setup.daemonConfig])
        #expect(verifyCode == 0, "\(verify)")
        #expect(verify.contains("chain intact"))
        kill(pid, SIGTERM)
        try await eventually("the daemon stops", timeout: .seconds(30)) { !daemon.isRunning }
    }
}
