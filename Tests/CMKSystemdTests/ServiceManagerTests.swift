import Foundation
import Testing

/// The shipped unit under a real systemd system manager (booted in private namespaces by
/// ``SystemdSandbox``): start waits for READY, status, reload, watchdog restart, clean stop, and
/// no restart loop on a bad configuration.
@Suite("systemd service manager", .serialized)
struct ServiceManagerTests {
    static let properties = ["ActiveState", "SubState", "StatusText", "MainPID", "NRestarts", "Result", "ExecMainStatus"]

    /// The real unit file with only what a test must change: the binary's path, a 3 s watchdog,
    /// a short restart delay, and the master key. Inside this nested manager (systemd 252 in
    /// private namespaces) `LoadCredential=` hands the service an empty credentials directory,
    /// so the test vault keeps its master key in the state directory instead (created on first
    /// run, mode 0600, owned by the dynamic user). Everything else (hardening, DynamicUser,
    /// directories) is exercised as shipped. Credential lookup itself is covered by the configuration tests.
    static func derivedUnit(binary: String) throws -> String {
        var text = try String(contentsOfFile: TestPaths.unitFile, encoding: .utf8)
        for (old, new) in [("ExecStart=/usr/bin/cmk-syncer ", "ExecStart=\(binary) "),
                           ("\nWatchdogSec=60s\n", "\nWatchdogSec=3s\n"),
                           ("\nRestartSec=5s\n", "\nRestartSec=500ms\n"),
                           ("\nTimeoutAbortSec=20s\n", "\nTimeoutAbortSec=2s\n"),
                           ("\nLoadCredential=vault-master-key:/etc/cmk-syncer/master.key\n", "\n")] {
            guard text.contains(old) else { throw HarnessError("the unit file no longer contains '\(old)': update the test's rewrite") }
            text = text.replacingOccurrences(of: old, with: new)
        }
        return text
    }

    static let configuration = """
        # state-directory: from $STATE_DIRECTORY (StateDirectory=cmk-syncer)
        vault:
          provider: local
          local: {master-key-file: master.key, create: true}
        accounts:
          - {name: files-1, kind: file, create: true}
          - {name: sql-1, kind: sql, create: true}
        sync: {interval: 1m}

        """

    static func masterKey() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
        return Data(bytes).base64EncodedString() + "\n"
    }

    static func sandbox(configuration: String) throws -> SystemdSandbox {
        let binary = try TestPaths.cmkSyncer()
        return try SystemdSandbox(units: ["cmk-syncer.service": derivedUnit(binary: binary)],
                                  etc: ["cmk-syncer/cmk-syncer.yaml": (configuration, 0o644),
                                        "cmk-syncer/master.key": (masterKey(), 0o600)],
                                  binary: binary)
    }

    /// Installs a catalog database with our catalog inside the sandbox, for `journalctl -x`.
    static func installCatalog(_ sandbox: SystemdSandbox) throws {
        try sandbox.installCatalogs([TestPaths.catalog])
    }

    @Test("start waits for READY, STATUS in systemctl, reload, watchdog restart of a frozen daemon, clean stop")
    func lifecycle() throws {
        let sandbox = try Self.sandbox(configuration: Self.configuration)
        try Self.installCatalog(sandbox)
        let unit = "cmk-syncer.service"

        // start: systemctl returns only after READY=1, so the status line is already there.
        let start = try sandbox.run("systemctl", "start", unit)
        let startLog = start.status == 0 ? "" : try sandbox.run("journalctl", "-u", unit, "--no-pager").stdout
        #expect(start.status == 0, "systemctl start: \(start.stderr)\n\(startLog)")
        let started = try sandbox.show(unit, "ActiveState", "SubState", "StatusText", "MainPID", "NRestarts")
        // Everything below needs a running daemon: stop here rather than time out step by step.
        try #require(started["ActiveState"] == "active" && started["SubState"] == "running", "after systemctl start: \(started)")
        #expect(started["StatusText"]?.hasPrefix("in sync: 2/2 accounts in sync, key ") == true, "StatusText right after start: \(started)")
        let status = try sandbox.run("systemctl", "status", "--no-pager", "--lines=8", unit)
        #expect(status.stdout.contains("Status: \"in sync: 2/2 accounts in sync"), "systemctl status:\n\(status.stdout)")
        print("service: systemctl start → \(started)\n\(status.stdout)")
        try? status.stdout.write(toFile: "/tmp/cmk-syncer-systemctl-status.txt", atomically: false, encoding: .utf8)
        let credential = try sandbox.run("sh", "-c", "ls -l /var/lib/private/cmk-syncer /run/credentials/\(unit)/ 2>&1")
        print("service: state and credentials:\n\(credential.stdout)")

        // reload: ExecReload sends SIGHUP; the daemon reports RELOADING=1 … READY=1 and runs a pass.
        let pid = try #require(started["MainPID"].flatMap(Int32.init).flatMap { $0 > 1 ? String($0) : nil }, "MainPID: \(started)")
        let reload = try sandbox.run("systemctl", "reload", unit)
        #expect(reload.status == 0, "systemctl reload: \(reload.stderr)")
        let reloaded = try sandbox.waitFor(unit, Self.properties, timeout: .seconds(20)) { values in
            let log = (try? sandbox.run("journalctl", "-u", unit, "--no-pager", "-o", "cat").stdout) ?? ""
            return values["ActiveState"] == "active" && values["SubState"] == "running" && log.contains("Configuration reloaded.")
                && log.components(separatedBy: "Sync pass finished.").count >= 3
        }
        #expect(reloaded["ActiveState"] == "active" && reloaded["MainPID"] == pid, "after reload: \(reloaded)")
        let reloadResult = try sandbox.show(unit, "ReloadResult")
        #expect(reloadResult["ReloadResult"] == "success", "the manager saw RELOADING=1 … READY=1: \(reloadResult)")
        print("service: systemctl reload → \(reloaded)")

        // watchdog: a frozen daemon (SIGSTOP) stops pinging; WatchdogSec=3s kills and restarts it.
        let frozen = try sandbox.run("kill", "-STOP", pid)
        #expect(frozen.status == 0, "kill -STOP \(pid): \(frozen.stderr)")
        let restarted = try sandbox.waitFor(unit, Self.properties, timeout: .seconds(40)) { values in
            values["NRestarts"] == "1" && values["ActiveState"] == "active" && values["SubState"] == "running" && values["MainPID"] != pid
        }
        #expect(restarted["NRestarts"] == "1" && restarted["ActiveState"] == "active", "after the watchdog fired: \(restarted)")
        #expect(restarted["StatusText"]?.hasPrefix("in sync:") == true)
        print("service: SIGSTOP \(pid) → watchdog timeout → restarted as \(restarted["MainPID"] ?? "?"), NRestarts=\(restarted["NRestarts"] ?? "?")")

        // stop: SIGTERM, STOPPING=1, exit 0 well within TimeoutStopSec.
        let stopStarted = ContinuousClock.now
        let stop = try sandbox.run("systemctl", "stop", unit)
        let stopTook = ContinuousClock.now - stopStarted
        let stopped = try sandbox.show(unit, "ActiveState", "Result", "ExecMainStatus", "ExecMainCode")
        #expect(stop.status == 0 && stopped["ActiveState"] == "inactive" && stopped["Result"] == "success" && stopped["ExecMainStatus"] == "0",
                "after stop: \(stopped) \(stop.stderr)")
        #expect(stopTook < .seconds(15), "stop took \(stopTook)")
        print("service: systemctl stop → \(stopped) in \(stopTook)")

        let journal = try sandbox.run("journalctl", "-x", "--no-pager", "-u", unit)
        try? journal.stdout.write(toFile: "/tmp/cmk-syncer-journalctl-x.txt", atomically: false, encoding: .utf8)
        print("service: journalctl -x -u \(unit):\n\(journal.stdout)")
    }

    @Test("A bad configuration: start fails with status 78, unit failed, no restart loop")
    func badConfiguration() throws {
        let sandbox = try Self.sandbox(configuration: Self.configuration.replacingOccurrences(of: "sync: {interval: 1m}", with: "sync: {intervall: 5m}"))
        try Self.installCatalog(sandbox)
        let unit = "cmk-syncer.service"
        let start = try sandbox.run("systemctl", "start", unit)
        #expect(start.status != 0, "systemctl start must fail")
        usleep(2_500_000) // several RestartSec=500ms periods: a restart would have happened by now
        let failed = try sandbox.show(unit, "ActiveState", "Result", "ExecMainStatus", "NRestarts", "StatusText")
        #expect(failed["ActiveState"] == "failed" && failed["ExecMainStatus"] == "78" && failed["NRestarts"] == "0",
                "after a bad configuration: \(failed)")
        #expect(failed["StatusText"]?.hasPrefix("invalid configuration:") == true, "\(failed)")
        let journal = try sandbox.run("journalctl", "-x", "--no-pager", "-u", unit)
        #expect(journal.stdout.contains("Subject: The cmk-syncer configuration is invalid"), "journalctl -x:\n\(journal.stdout)")
        let status = try sandbox.run("systemctl", "status", "--no-pager", "--lines=5", unit)
        try? (status.stdout + "\n" + journal.stdout).write(toFile: "/tmp/cmk-syncer-badconfig.txt", atomically: false, encoding: .utf8)
        print("service: bad configuration → \(failed)\n\(status.stdout)")
    }
}
