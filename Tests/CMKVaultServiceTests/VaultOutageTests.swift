import Foundation
import Testing

/// The vault service dies (kill -9) in the middle of a rotation while a host's daemon serves: the
/// daemon rides it out as an outage — DEGRADED, vault unreachable, nothing suspended, no account
/// touched — and once the service is back, its next pass binds every account to the one version
/// the rotation left (issue "The customers' runbooks", kill -9 check).
@Suite(.serialized) struct VaultOutageTests {
    typealias Daemon = EventPushTests.Daemon

    /// The host's last report (`cmkctl status --report-only --json`).
    static func report(_ daemon: Daemon) throws -> [String: Any] {
        let status = try daemon.host.run("cmkctl", ["status", "--report-only", "--json"])
        guard let document = try JSONSerialization.jsonObject(with: status.output) as? [String: Any],
              let report = document["report"] as? [String: Any] else { throw VaultTestError("no report yet: \(status.errors)") }
        return report
    }

    /// Asks the daemon for a pass (SIGUSR1) and waits for a report with a new sync id; before the
    /// first report, waits for the pass the daemon runs at start (a SIGUSR1 before its handler is
    /// installed would end it).
    static func pass(_ daemon: Daemon, timeout: TimeInterval = 60) throws -> [String: Any] {
        let before = (try? report(daemon))?["syncID"] as? String
        if before != nil { kill(daemon.process.processIdentifier, SIGUSR1) }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let now = try? report(daemon), let id = now["syncID"] as? String, id != before { return now }
            usleep(100_000)
        }
        let state = daemon.process.isRunning ? "running" : "exited with \(daemon.process.terminationStatus)"
        throw VaultTestError("no new pass within \(Int(timeout)) s (the daemon \(state)); last status: \((try? daemon.host.run("cmkctl", ["status", "--report-only", "--json"])).map { String(decoding: $0.output.prefix(600), as: UTF8.self) + $0.errors } ?? "")\n\(daemon.log.suffix(3000))")
    }

    @Test("cmk-vault killed after the new version is durable and before it answers: the host is DEGRADED with nothing suspended, then rebinds to that one version")
    func daemonRidesOutAVaultKilledMidRotation() throws {
        var vault = try VaultProcess.start(extra: RotationPolicyProcessTests.vaultSection)
        let principal = try RotationPolicyProcessTests.principal(vault)
        _ = try vault.python("rotation_policy.py", principal.merging(["POLICY_ACTION": "setup", "KEY_NAME": "data-at-rest-rsa2048",
                                                                      "POLICY_JSON": #"{"lifetimeActions":[]}"#]) { $1 })
        let platform = try vault.ctl(["identities", "add", "host-1.example", "--json"])
        // Fast retries so a pass against a dead service ends in seconds.
        let host = try OneVaultDaemonTests.Host.make(on: vault, name: "host-1", platform: platform, extra: """
            sync: {jitter: 0%, retry: {attempts: 2, initial-delay: 100ms, max-delay: 200ms}}
            logging: {format: text}
            """)
        let daemon = try Daemon(host)
        defer {
            daemon.stop()
            vault.stop()
        }
        var report = try Self.pass(daemon)
        let first = try #require(report["currentVersion"] as? String)
        #expect(report["state"] as? String == "ok", "\(report)")

        // The customer rotates; the service dies (SIGKILL at the crash point) once the new version is
        // on disk, before it answers.
        #expect(vault.terminate() == 0)
        vault = try vault.restart(environment: ["CMK_CRASH_AT": "key-rotation.version-written"])
        let answer = try vault.python("rotation_policy.py", principal.merging(["POLICY_ACTION": "rotate", "KEY_NAME": "data-at-rest-rsa2048"]) { $1 })
        #expect(answer["error"] != nil, "the rotation was answered: \(answer)")
        #expect(RotationPolicyProcessTests.killedBySIGKILL(vault))

        // While it is down: an outage, not a pull. Nothing suspended, every binding kept.
        report = try Self.pass(daemon)
        #expect(report["state"] as? String == "degraded", "\(report)")
        #expect((report["cause"] as? String)?.hasPrefix("vault unreachable") == true, "\(report["cause"] ?? "")")
        let accounts = try #require(report["accounts"] as? [[String: Any]])
        #expect(accounts.count == OneVaultDaemonTests.kinds.count)
        for account in accounts {
            #expect(account["suspended"] as? Bool == false && account["binding"] as? String == first, "\(account)")
        }

        // Back: the next pass binds every account to the version the killed rotation left, and
        // the key has exactly that one new version.
        vault = try vault.restart()
        report = try Self.pass(daemon)
        #expect(report["state"] as? String == "ok", "\(report)")
        let second = try #require(report["currentVersion"] as? String)
        #expect(second != first)
        for account in try #require(report["accounts"] as? [[String: Any]]) {
            #expect(account["suspended"] as? Bool == false && account["binding"] as? String == second, "\(account)")
        }
        let versions = try RotationPolicyProcessTests.versions(vault, key: "data-at-rest-rsa2048")
        #expect(versions.map(\.id) == [first, second], "\(versions)")

    }
}
