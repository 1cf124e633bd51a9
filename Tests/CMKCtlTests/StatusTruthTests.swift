import Foundation
import Testing

/// Issue 24, defects 4, 6, 14 and 15: `cmkctl status` and `cmkctl sync --wait` tell the truth
/// whatever the daemon's disk and clock do: no running daemon or a report that is not the running
/// daemon's current one is never exit 0; a daemon that cannot write `daemon.json` is still found;
/// a request is matched with its pass by a count the daemon echoes, not by clock times.
@Suite("cmkctl status and sync: exit codes, unwritable state files, skewed clocks")
struct StatusTruthTests {
    /// `cmk-syncer run` in the background (optionally behind a wrapper such as `faketime`).
    final class RunningDaemon {
        let process = Process()
        let logPath: String
        let state: String

        init(_ harness: Harness, wrapper: [String] = [], environment: [String: String] = [:]) throws {
            let syncer = try Harness.binary("cmk-syncer")
            let arguments = ["run", "--config", harness.config, "--log-format", "text"]
            process.executableURL = URL(fileURLWithPath: wrapper.first ?? syncer)
            process.arguments = wrapper.isEmpty ? arguments : Array(wrapper.dropFirst()) + [syncer] + arguments
            var env = ProcessInfo.processInfo.environment
            for name in ["CMK_SYNCER_CONFIG", "NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC"] { env[name] = nil }
            for (name, value) in environment { env[name] = value }
            process.environment = env
            logPath = harness.root + "/daemon-\(UUID().uuidString).log"
            state = harness.state
            FileManager.default.createFile(atPath: logPath, contents: nil)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            process.standardOutput = log
            process.standardError = log
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

        /// The daemon's own pid (behind a wrapper that forks, not the wrapper's), from daemon.json.
        var daemonPID: Int32? {
            guard let data = FileManager.default.contents(atPath: state + "/daemon.json"),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
            return (object["pid"] as? Int).map(Int32.init)
        }

        /// Waits until the log has `count` lines with `text`.
        func waitForLog(_ text: String, count: Int = 1, timeout: Double = 60) async throws {
            let deadline = Date().addingTimeInterval(timeout)
            while log.components(separatedBy: text).count - 1 < count {
                guard process.isRunning, Date() < deadline else {
                    Issue.record("no \(count)× '\(text)' in the daemon's log:\n\(log)")
                    throw Harness.HarnessError.timeout(text)
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }

        /// SIGTERM, then SIGKILL when the daemon has not exited after `grace` seconds (a daemon
        /// hung on purpose never finishes its pass).
        func stop(grace: Double = 20) {
            let daemon = daemonPID
            for pid in Set([daemon, process.processIdentifier].compactMap { $0 }) { kill(pid, SIGTERM) }
            let deadline = Date().addingTimeInterval(grace)
            while process.isRunning, Date() < deadline { usleep(50_000) }
            if process.isRunning {
                for pid in Set([daemon, process.processIdentifier].compactMap { $0 }) { kill(pid, SIGKILL) }
                process.waitUntilExit()
            }
        }

        deinit {
            if let pid = daemonPID, pid != process.processIdentifier { kill(pid, SIGKILL) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
    }

    @Test("exit codes: after run --once with no daemon, status is 1 (NOT RUNNING) and --report-only gives the report's code; with the daemon running and in sync, 0")
    func exitCodes() async throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        #expect(try harness.once().code == 0)
        let status = try harness.ctl(["status"])
        #expect(status.code == 1, "no daemon runs: \(status.text)")
        #expect(status.text.contains("daemon: NOT RUNNING (nothing holds \(harness.state)/daemon.lock)"), "\(status.text)")
        let json = try harness.ctl(["status", "--json"])
        let jsonCode = try json.object()["exitCode"] as? Int
        #expect(json.code == 1 && jsonCode == 1)
        let reportOnly = try harness.ctl(["status", "--report-only", "--json"])
        #expect(reportOnly.code == 0, "\(reportOnly.stderr)")
        #expect((try reportOnly.object()["reportOnly"] as? Bool) == true)

        let daemon = try RunningDaemon(harness)
        defer { daemon.stop() }
        try await daemon.waitForLog("Sync pass finished.")
        let running = try harness.ctl(["status"])
        #expect(running.code == 0, "\(running.text)\(running.stderr)")
        #expect(running.text.contains("daemon: running (pid \(daemon.process.processIdentifier)"), "\(running.text)")
        let help = try harness.ctl(["status", "--help"])
        #expect(help.text.contains("--report-only"))
    }

    @Test("a report from an earlier process while the running daemon has not written one: NOT CURRENT, exit 1")
    func reportFromAnEarlierProcess() async throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        #expect(try harness.once().code == 0)
        // The daemon's first pass never finishes: status.json is still the --once process's.
        let daemon = try RunningDaemon(harness, environment: ["CMK_HANG_AT": "pass.start"])
        defer { daemon.stop(grace: 0) }
        try await daemon.waitForLog("cmk-syncer started.")
        let status = try harness.ctl(["status"])
        #expect(status.code == 1, "\(status.text)")
        #expect(status.text.contains("NOT CURRENT: this report is from an earlier cmk-syncer"), "\(status.text)")
        let json = try harness.ctl(["status", "--json"]).object()
        #expect((json["notCurrent"] as? String)?.contains("(pid \(daemon.process.processIdentifier)) has not written one yet") == true)
    }

    @Test("a full state disk: daemon.json unwritable at start is logged and written later, sync finds the daemon; status.json unwritable is never shown as current (tmpfs in a private mount namespace)")
    func fullStateDisk() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let out = harness.root + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let script = """
            set -u
            mkdir -p "$STATE" && mount -t tmpfs -o size=16m,mode=0700 tmpfs "$STATE" || exit 90
            ctl() { name=$1; shift; "$CTL" "$@" --config "$CONFIG" >"$OUT/$name.out" 2>"$OUT/$name.err"; echo $? >"$OUT/$name.code"; }
            fill() { dd if=/dev/zero of="$STATE/fill" bs=64k status=none 2>/dev/null; sync; }
            "$SYNCER" run --once --config "$CONFIG" >"$OUT/once.log" 2>&1
            fill
            "$SYNCER" run --config "$CONFIG" --log-format text >"$OUT/daemon.log" 2>&1 &
            pid=$!
            for _ in $(seq 600); do grep -q 'Sync pass finished' "$OUT/daemon.log" && break; sleep 0.1; done
            echo $pid >"$OUT/pid"
            ctl status-full status
            ctl sync-full sync
            sleep 2
            rm -f "$STATE/fill"
            ctl wait-free sync --wait --timeout 30
            ctl status-free status
            cp "$STATE/daemon.json" "$OUT/daemon.json" 2>/dev/null
            fill
            ctl wait-full sync --wait --timeout 30
            ctl status-full-again status
            ls "$STATE" >"$OUT/ls"
            rm -f "$STATE/fill"
            ctl wait-again sync --wait --timeout 30
            ctl status-again status
            ls "$STATE" >"$OUT/ls-again"
            kill -TERM $pid; wait $pid
            echo $? >"$OUT/daemon.code"
            """
        var environment = ProcessInfo.processInfo.environment
        environment["CMK_SYNCER_CONFIG"] = nil
        for (name, value) in ["STATE": harness.state, "OUT": out, "CONFIG": harness.config,
                              "SYNCER": try Harness.binary("cmk-syncer"), "CTL": try Harness.binary("cmkctl")] {
            environment[name] = value
        }
        let run = try Harness.run("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/bash", "-c", script], environment: environment)
        try #require(run.code == 0, "the scenario failed (unshare and mount need root): \(run.stderr)")
        func file(_ name: String) -> String { (try? String(contentsOfFile: out + "/" + name, encoding: .utf8)) ?? "" }
        func code(_ name: String) -> String { file(name + ".code").trimmingCharacters(in: .whitespacesAndNewlines) }
        let pid = file("pid").trimmingCharacters(in: .whitespacesAndNewlines)
        let log = file("daemon.log")

        // Defect 4: daemon.json could not be written at start: logged (catalogued), the daemon is still found.
        #expect(log.contains("Cannot write the state file; writing it again at the next pass.") && log.contains("daemon.json"), "\(log)")
        #expect(log.contains("17504177c8034ca38bda9292111bdd3b"), "the catalogued MESSAGE_ID: \(log)")
        #expect(code("sync-full") == "0", "sync finds the daemon through its lock: \(file("sync-full.err"))")
        #expect(file("sync-full.out").contains("asked cmk-syncer (pid \(pid))"))
        // Defect 6: its first report could not be written: the old one is not shown as current.
        #expect(code("status-full") == "1", "\(file("status-full.out"))")
        #expect(file("status-full.out").contains("daemon: running (pid \(pid)"), "\(file("status-full.out"))")
        #expect(file("status-full.out").contains("NOT CURRENT: cmk-syncer could not write its last report"), "\(file("status-full.out"))")
        // Space is back: the next pass writes both files; status is current and exit 0.
        #expect(code("wait-free") == "0", "\(file("wait-free.out"))\(file("wait-free.err"))")
        #expect(code("status-free") == "0", "\(file("status-free.out"))")
        #expect(file("daemon.json").contains("\"pid\" : \(pid)"), "daemon.json rewritten: \(file("daemon.json"))")
        #expect(log.contains("The state file can be written again."))
        // Full again: sync --wait says the report cannot be written (not a timeout), status exit 1.
        #expect(code("wait-full") == "1")
        #expect(file("wait-full.err").contains("cannot write its report"), "\(file("wait-full.err"))")
        #expect(code("status-full-again") == "1")
        #expect(file("status-full-again.out").contains("NOT CURRENT"), "\(file("status-full-again.out"))")
        #expect(file("ls").contains("status.stale.json") && !file("ls").contains("status.json\n"), "\(file("ls"))")
        #expect(code("wait-again") == "0" && code("status-again") == "0", "\(file("status-again.out"))")
        #expect(!file("ls-again").contains("status.stale.json"), "\(file("ls-again"))")
        #expect(code("daemon") == "0")
    }

    @Test("clock skew (libfaketime; the boot clock, like a real clock step, is not moved): a daemon two days behind answers sync --wait at once and its report is not stale")
    func daemonClockBehind() async throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        #expect(try harness.once().code == 0)
        let daemon = try RunningDaemon(harness, wrapper: ["/usr/bin/faketime", "-f", "-2d"], environment: ["FAKETIME_DONT_FAKE_MONOTONIC": "1"])
        defer { daemon.stop() }
        try await daemon.waitForLog("Sync pass finished.")
        let started = ContinuousClock.now
        let sync = try harness.ctl(["sync", "--wait", "--timeout", "20"])
        #expect(sync.code == 0, "\(sync.text)\(sync.stderr)")
        #expect(ContinuousClock.now - started < .seconds(15), "sync --wait waited for its timeout")
        let status = try harness.ctl(["status", "--json"])
        let document = try status.object()
        #expect(document["stale"] as? Bool == false, "a report two days 'old' by the skewed clock, seconds old in fact: \(status.text)")
        #expect(status.code == 0, "\(status.text)")
        let text = try harness.ctl(["status"]).text
        #expect(text.contains("note: the report's wall-clock times are behind this host's clock by about 2d"), "\(text)")
    }

    @Test("clock skew: a report dated 729 days ahead is stale once its pass is old on the boot clock, and one without boot-clock times is stale at once")
    func reportDatedAhead() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let once = try Harness.run("/usr/bin/faketime", ["-f", "+729d", try Harness.binary("cmk-syncer"), "run", "--once", "--config", harness.config],
                                   environment: ProcessInfo.processInfo.environment.merging(["FAKETIME_DONT_FAKE_MONOTONIC": "1"]) { $1 })
        #expect(once.code == 0, "\(once.stderr)")
        let path = harness.state + "/status.json"
        let fresh = try harness.ctl(["status", "--json", "--report-only"])
        let freshStale = try fresh.object()["stale"] as? Bool
        #expect(fresh.code == 0 && freshStale == false, "\(fresh.text)")

        // The same report, its pass an hour old on the boot clock (interval 1m: stale after 3 minutes).
        var report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        let uptime = try #require(report["finishedUptime"] as? Double, "the report records the boot clock")
        report["finishedUptime"] = uptime - 3600
        try JSONSerialization.data(withJSONObject: report).write(to: URL(fileURLWithPath: path))
        let old = try harness.ctl(["status", "--json", "--report-only"]).object()
        #expect(old["stale"] as? Bool == true, "\(old)")
        // A report without boot-clock times (written by an older daemon or another boot) dated ahead.
        report["finishedUptime"] = nil
        report["bootID"] = nil
        try JSONSerialization.data(withJSONObject: report).write(to: URL(fileURLWithPath: path))
        let ahead = try harness.ctl(["status", "--json", "--report-only"]).object()
        #expect(ahead["stale"] as? Bool == true, "\(ahead)")
    }
}
