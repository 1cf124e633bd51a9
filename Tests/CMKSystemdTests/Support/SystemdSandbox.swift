import Foundation

/// A real systemd system manager, booted by `Scripts/systemd-sandbox.sh` as PID 1 of private
/// PID, mount, UTS, IPC, network and cgroup namespaces (tmpfs on /run, /tmp and /var, an overlay
/// on /etc, `SYSTEMD_UNIT_PATH` = the test's unit directory). Commands run inside with ``run(_:)``.
final class SystemdSandbox {
    let work: TemporaryDirectory
    let units: String
    private let boot: Process
    private let script = TestPaths.scripts + "/systemd-sandbox.sh"

    /// `units` maps file names to unit text; `etc` maps paths below /etc to file contents and modes.
    /// `binary`, when given, is installed at ``installedBinary`` inside the sandbox (on its own
    /// /run) and the units are rewritten to start it: a checkout under /tmp is hidden by the
    /// sandbox's tmpfs and by the unit's `PrivateTmp=yes`.
    init(units unitFiles: [String: String], etc: [String: (String, Int)], binary: String? = nil) throws {
        _ = try TestPaths.tool("/lib/systemd/systemd", package: "systemd")
        _ = try TestPaths.tool("/usr/bin/nsenter", package: "util-linux")
        work = try TemporaryDirectory(prefix: "systemd")
        units = work.path + "/units"
        var unitFiles = unitFiles
        var staged: String?
        if let binary {
            // The work directory stays visible inside the sandbox at the same path.
            staged = work.path + "/cmk-syncer.bin"
            try FileManager.default.copyItem(atPath: binary, toPath: staged!)
            unitFiles = unitFiles.mapValues { $0.replacingOccurrences(of: binary, with: Self.installedBinary) }
        }
        for (name, text) in unitFiles { try work.write(text, to: "units/" + name) }
        try work.write("[Unit]\nDescription=cmk-syncer test boot\nWants=systemd-journald.socket systemd-journald.service\n",
                       to: "units/cmk-test.target")
        for (path, (text, mode)) in etc { try work.write(text, to: "etc-upper/" + path, mode: mode) }
        boot = try Command.start("/bin/bash", [script, "boot", work.path, units],
                                 stdout: work.path + "/manager.log", stderr: work.path + "/manager.err")
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let state = try? run("systemctl", "is-system-running"), ["running", "degraded"].contains(state.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) {
                if let staged {
                    let install = try run("install", "-D", "-m", "0755", staged, Self.installedBinary)
                    guard install.status == 0 else { throw HarnessError("cannot install the binary in the sandbox: \(install.stderr)") }
                }
                return
            }
            guard boot.isRunning else { break }
            usleep(100_000)
        }
        shutdown()
        throw HarnessError("systemd did not boot in the sandbox:\n\(managerLog)")
    }

    /// Where a staged binary lives inside the sandbox (its /run is a tmpfs of its own).
    static let installedBinary = "/run/cmk-syncer-test/cmk-syncer"

    deinit { shutdown() }

    var managerLog: String {
        ((try? String(contentsOfFile: work.path + "/manager.log", encoding: .utf8)) ?? "")
            + ((try? String(contentsOfFile: work.path + "/manager.err", encoding: .utf8)) ?? "")
    }

    /// Runs a command inside the sandbox's namespaces.
    @discardableResult
    func run(_ arguments: String..., timeout: Duration = .seconds(60)) throws -> CommandResult {
        try Command.run("/bin/bash", [script, "run", work.path] + arguments,
                        environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LANG": "C.UTF-8",
                                      "COLUMNS": "200"],
                        timeout: timeout)
    }

    /// `systemctl show -p NAME --value` for several properties.
    func show(_ unit: String, _ properties: String...) throws -> [String: String] {
        let result = try run("systemctl", "show", unit, "-p", properties.joined(separator: ","))
        var values: [String: String] = [:]
        for line in result.stdout.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        return values
    }

    /// Polls until `condition` holds for the unit's properties; returns the last values.
    @discardableResult
    func waitFor(_ unit: String, _ properties: [String], timeout: Duration, _ condition: ([String: String]) -> Bool) throws -> [String: String] {
        let deadline = ContinuousClock.now + timeout
        var last: [String: String] = [:]
        while ContinuousClock.now < deadline {
            let result = try run("systemctl", "show", unit, "-p", properties.joined(separator: ","))
            last = [:]
            for line in result.stdout.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                if parts.count == 2 { last[String(parts[0])] = String(parts[1]) }
            }
            if condition(last) { return last }
            usleep(100_000)
        }
        return last
    }

    func shutdown() {
        guard FileManager.default.fileExists(atPath: work.path) else { return }
        _ = try? Command.run("/bin/bash", [script, "kill", work.path], timeout: .seconds(30))
        if boot.isRunning { kill(boot.processIdentifier, SIGKILL) }
        boot.waitUntilExit()
    }
}
