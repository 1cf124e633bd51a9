import Foundation
import Testing

/// SPEC §7 `Type=notify` protocol, against the real `cmk-syncer` binary with a notify socket the
/// test owns (what systemd does).
@Suite("sd_notify protocol", .serialized)
struct NotifyTests {
    @Test("READY after the first pass, STATUS, RELOADING+MONOTONIC_USEC then READY on SIGHUP, STOPPING on SIGTERM")
    func lifecycleSequence() throws {
        let daemon = try DaemonHarness()
        let listener = daemon.listener

        let extend = try #require(listener.nextEvent(within: .seconds(20)), "no notification at start; log:\n\(daemon.log)")
        #expect(extend.keys == ["EXTEND_TIMEOUT_USEC"], "first message: \(extend)")
        #expect(Int(extend["EXTEND_TIMEOUT_USEC"] ?? "") ?? 0 >= 1_000_000)

        let ready = try #require(listener.nextEvent(within: .seconds(60)), "no READY=1; log:\n\(daemon.log)")
        #expect(ready.keys == ["READY", "STATUS"], "READY must come with the status line: \(ready)")
        #expect(ready["READY"] == "1")
        let status = ready["STATUS"] ?? ""
        #expect(status.hasPrefix("in sync: 2/2 accounts in sync, key "), "status after the first pass: \(status)")
        #expect(status.contains("; next pass "), "status names the next pass: \(status)")

        let beforeReload = NotifyClock.monotonicMicroseconds()
        daemon.signal(SIGHUP)
        let reloading = try #require(listener.nextEvent(within: .seconds(20)), "no RELOADING=1 after SIGHUP; log:\n\(daemon.log)")
        let afterReload = NotifyClock.monotonicMicroseconds()
        #expect(reloading.keys == ["RELOADING", "MONOTONIC_USEC"], "reload message: \(reloading)")
        #expect(reloading["RELOADING"] == "1")
        let monotonic = UInt64(reloading["MONOTONIC_USEC"] ?? "") ?? 0
        #expect(monotonic >= beforeReload && monotonic <= afterReload,
                "MONOTONIC_USEC \(monotonic) is not CLOCK_MONOTONIC at the time of the reload (\(beforeReload)…\(afterReload))")

        let reloaded = try #require(listener.nextEvent(within: .seconds(20)), "no READY=1 after the reload")
        #expect(reloaded.keys == ["READY", "STATUS"], "end of reload: \(reloaded)")
        let passAfterReload = try #require(listener.nextEvent(within: .seconds(60)), "no STATUS after the pass that follows a reload")
        #expect(passAfterReload.keys == ["STATUS"], "pass after reload: \(passAfterReload)")
        #expect(passAfterReload["STATUS"]?.hasPrefix("in sync: 2/2 accounts in sync") == true)

        daemon.signal(SIGTERM)
        let stopping = try #require(listener.nextEvent(within: .seconds(20)), "no STOPPING=1 after SIGTERM")
        #expect(stopping.keys == ["STOPPING", "STATUS"], "stop message: \(stopping)")
        #expect(stopping["STOPPING"] == "1")
        let code = daemon.waitForExit(timeout: .seconds(20))
        #expect(code == 0, "exit status after SIGTERM: \(String(describing: code)); log:\n\(daemon.log)")
        let trailing = listener.collect(for: .milliseconds(200))
        #expect(trailing.isEmpty, "messages after STOPPING: \(trailing)")
        print("notify: EXTEND_TIMEOUT_USEC → READY=1+STATUS(\(status)) → SIGHUP → \(reloading) → \(reloaded) → \(passAfterReload) → SIGTERM → \(stopping) → exit \(code.map(String.init) ?? "none")")
    }

    @Test("WATCHDOG=1 at half of WATCHDOG_USEC while the scheduler loop is healthy")
    func watchdogPings() throws {
        let daemon = try DaemonHarness(environment: ["WATCHDOG_USEC": "2000000"])
        let messages = daemon.listener.collect(for: .seconds(6))
        let pings = messages.filter { $0.keys == ["WATCHDOG"] && $0["WATCHDOG"] == "1" }
        #expect(messages.contains { $0["READY"] == "1" }, "READY=1 missing: \(messages)")
        #expect(pings.count >= 4, "\(pings.count) pings in 6 s with WatchdogSec=2s (expected one a second); log:\n\(daemon.log)")
        let late = pings.filter { $0.at - daemon.launched > .milliseconds(3500) }
        #expect(late.count >= 2, "pings must continue after the first interval: \(late.count)")
        let gaps = zip(pings.dropFirst(), pings).map { $0.at - $1.at }
        let widest = gaps.max() ?? .zero
        #expect(widest < .milliseconds(1900), "widest gap between pings \(widest) ≥ the 2 s watchdog interval")
        print("notify: WATCHDOG_USEC=2000000 → \(pings.count) pings in 6 s, widest gap \(widest)")
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: .seconds(20)) == 0)
    }

    @Test("No WATCHDOG=1 once the scheduler loop is stuck (CMK_HANG_AT=pass.start), READY=1 at start-timeout")
    func stuckLoopStopsPinging() throws {
        let daemon = try DaemonHarness(configuration: { DaemonHarness.validConfiguration(state: $0, extraSync: ", start-timeout: 3s") },
                                       environment: ["WATCHDOG_USEC": "2000000", "CMK_HANG_AT": "pass.start"])
        let messages = daemon.listener.collect(for: .seconds(7))
        let pings = messages.filter { $0.keys == ["WATCHDOG"] }
        // The loop hangs right after start; a ping may still go out inside the first 2 s interval,
        // none may go out later: systemd would kill the daemon at 2 s without one.
        let late = pings.filter { $0.at - daemon.launched > .milliseconds(3500) }
        #expect(late.isEmpty, "a stuck loop still sent \(late.count) pings after the first interval; all: \(messages)")
        let ready = messages.first { $0["READY"] == "1" }
        #expect(ready?["STATUS"]?.hasPrefix("starting: first pass still running") == true,
                "READY=1 at the start timeout with an honest status: \(messages)")
        print("notify: stuck loop → \(pings.count) early pings, \(late.count) after 3.5 s; \(ready.map(String.init(describing:)) ?? "no READY")")
        daemon.stop()
    }

    @Test("A bad configuration: ERRNO=EINVAL with a STATUS, exit status 78, no READY", arguments: [
        ("unknown key", "sync: {intervall: 5m}\n"),
        ("value out of range", "sync: {interval: 5s}\n"),
    ])
    func badConfiguration(_ name: String, _ fragment: String) throws {
        let daemon = try DaemonHarness(configuration: { state in
            """
            state-directory: \(state)
            vault:
              provider: local
              local: {master-key-file: \(state)/master.key, create: true}
            accounts:
              - {name: files-1, kind: file, create: true}
            \(fragment)
            """
        })
        let code = daemon.waitForExit(timeout: .seconds(20))
        let messages = daemon.listener.collect(for: .milliseconds(300))
        #expect(code == 78, "exit status for \(name): \(String(describing: code)); log:\n\(daemon.log)")
        #expect(messages.count == 1, "exactly one notification: \(messages)")
        let message = try #require(messages.first)
        #expect(message.keys == ["ERRNO", "STATUS"], "\(message)")
        #expect(message["ERRNO"] == "\(EINVAL)", "ERRNO= is an errno (EINVAL), not the exit code")
        #expect(message["STATUS"]?.hasPrefix("invalid configuration: ") == true, "\(message)")
        #expect(message["STATUS"]?.contains("sync.") == true, "the status names the key: \(message)")
        print("notify: bad configuration (\(name)) → exit \(code.map(String.init) ?? "none"), \(message)")
    }
}

enum NotifyClock {
    static func monotonicMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1_000
    }
}
