import Foundation
import Testing

/// End-to-end tests of the `cmkctl` executable against a real `cmk-syncer` and a temporary
/// embedded setup (local vault, three accounts).
@Suite("cmkctl")
struct CLITests {
    @Test func statusBeforeAndAfterAPass() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }

        let never = try harness.ctl(["status", "--json"])
        #expect(never.code == 1)
        #expect(try never.object()["neverRun"] as? Bool == true)
        let neverText = try harness.ctl(["status"])
        #expect(neverText.code == 1)
        #expect(neverText.text.contains("never completed a sync pass"))

        let once = try harness.once()
        #expect(once.code == 0, "\(once.stderr)")
        // No daemon runs after `run --once`: plain status exits 1 (below); --report-only judges the report.
        let status = try harness.ctl(["status", "--json", "--report-only"])
        #expect(status.code == 0, "\(status.stderr)")
        let document = try status.object()
        #expect(document["neverRun"] as? Bool == false)
        #expect(document["stale"] as? Bool == false)
        let daemon = try #require(document["daemon"] as? [String: Any])
        #expect(daemon["running"] as? Bool == false)
        let report = try #require(document["report"] as? [String: Any])
        #expect(report["state"] as? String == "ok")
        let accounts = try #require(report["accounts"] as? [[String: Any]])
        #expect(Set(accounts.compactMap { $0["name"] as? String }) == Set(harness.accounts))
        let current = try #require(report["currentVersion"] as? String)
        for account in accounts {
            #expect(account["binding"] as? String == current)
            #expect(account["suspended"] as? Bool == false)
            #expect(((account["outcome"] as? [String: Any])?["code"] as? String).map { ["in-sync", "rebound"].contains($0) } == true)
        }
        let text = try harness.ctl(["status"])
        #expect(text.code == 1, "no daemon runs")
        #expect(text.text.contains("daemon: NOT RUNNING (nothing holds \(harness.state)/daemon.lock)"), "\(text.text)")
        #expect(text.text.contains("versions safe to disable:"))
    }

    @Test func rotateRebindsEveryAccountAndKeysListCounts() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        #expect(try harness.once().code == 0)
        let before = try harness.ctl(["keys", "list", "--json"]).object()
        let oldVersion = try #require((before["versions"] as? [[String: Any]])?.first?["version"] as? String)

        let rotate = try harness.ctl(["keys", "rotate"])
        #expect(rotate.code == 0, "\(rotate.stderr)")
        #expect(rotate.text.contains("cmk-syncer is not running"))
        let once = try harness.once()
        #expect(once.code == 0, "\(once.stderr)")

        let report = try #require(try harness.ctl(["status", "--json"]).object()["report"] as? [String: Any])
        let newVersion = try #require(report["currentVersion"] as? String)
        #expect(newVersion != oldVersion)
        let accounts = try #require(report["accounts"] as? [[String: Any]])
        #expect(accounts.count == 3)
        #expect(accounts.allSatisfy { $0["binding"] as? String == newVersion })

        let listing = try harness.ctl(["keys", "list", "--json"])
        #expect(listing.code == 0, "\(listing.stderr)")
        let versions = try #require(try listing.object()["versions"] as? [[String: Any]])
        let current = try #require(versions.first { $0["version"] as? String == newVersion })
        #expect(current["current"] as? Bool == true)
        #expect(current["accountCount"] as? Int == 3)
        // The DEK counts per version add up to the DEKs the accounts hold.
        var deks = 0
        for name in harness.accounts {
            let shown = try harness.ctl(["accounts", "show", name, "--json"])
            #expect(shown.code == 0, "\(shown.stderr)")
            let account = try shown.object()
            #expect(account["binding"] as? String == newVersion)
            deks += (account["deks"] as? [[String: Any]])?.count ?? 0
        }
        #expect(versions.reduce(0) { $0 + ($1["deks"] as? Int ?? 0) } == deks)
        #expect(current["deks"] as? Int ?? 0 >= 3)

        let audit = try harness.ctl(["audit", "list", "--json"])
        let records = try #require(try audit.json() as? [[String: Any]])
        #expect(records.contains { $0["event"] as? String == "operator-action" && ($0["details"] as? [String: String])?["operation"] == "keys rotate" })
    }

    @Test func dataRoundTripFromFileAndStdin() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        #expect(try harness.once().code == 0)
        let payload = Data((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
        let input = harness.root + "/input.bin"
        try payload.write(to: URL(fileURLWithPath: input))

        let put = try harness.ctl(["data", "put", "files-1", "docs/big.bin", input])
        #expect(put.code == 0, "\(put.stderr)")
        let output = harness.root + "/output.bin"
        let get = try harness.ctl(["data", "get", "files-1", "docs/big.bin", "--out", output])
        #expect(get.code == 0, "\(get.stderr)")
        #expect(FileManager.default.contents(atPath: output) == payload)

        let small = Data("hello from stdin\n".utf8)
        #expect(try harness.ctl(["data", "put", "sql-1", "note.txt"], stdin: small).code == 0)
        let viaStdout = try harness.ctl(["data", "get", "sql-1", "note.txt"])
        #expect(viaStdout.code == 0)
        #expect(viaStdout.stdout == small)

        let sweep = try harness.ctl(["data", "sweep", "files-1"])
        #expect(sweep.code == 0)
        #expect(sweep.text.contains("swept files-1: 1 objects"))
        let show = try harness.ctl(["accounts", "show", "files-1", "--json"]).object()
        #expect(show["objects"] as? Int == 1)
    }

    @Test func pullSuspendsAndRestoreResumes() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        #expect(try harness.once().code == 0)
        #expect(try harness.ctl(["data", "put", "audit-1", "log.txt"], stdin: Data("kept".utf8)).code == 0)

        let pull = try harness.ctl(["keys", "pull"])
        #expect(pull.code == 0, "\(pull.stderr)")
        #expect(try harness.once().code == 4)
        let refused = try harness.ctl(["data", "get", "audit-1", "log.txt"])
        #expect(refused.code == 4)
        #expect(refused.stderr.hasPrefix("cmkctl: account 'audit-1' is suspended"))
        #expect(try harness.ctl(["data", "put", "audit-1", "other.txt"], stdin: Data("x".utf8)).code == 4)
        #expect(try harness.ctl(["status", "--report-only"]).code == 4)
        let listing = try harness.ctl(["keys", "list", "--json"]).object()
        #expect(listing["state"] as? String == "deleted")

        let restore = try harness.ctl(["keys", "restore"])
        #expect(restore.code == 0, "\(restore.stderr)")
        #expect(try harness.once().code == 0)
        let get = try harness.ctl(["data", "get", "audit-1", "log.txt"])
        #expect(get.code == 0, "\(get.stderr)")
        #expect(get.stdout == Data("kept".utf8))
    }

    @Test func disablingAVersionInUseIsRefusedUnlessForced() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        #expect(try harness.once().code == 0)
        let versions = try #require(try harness.ctl(["keys", "list", "--json"]).object()["versions"] as? [[String: Any]])
        let version = try #require(versions.first?["version"] as? String)

        let refused = try harness.ctl(["keys", "disable", version])
        #expect(refused.code == 1)
        #expect(refused.stderr.contains("still wraps"))
        #expect(refused.stderr.contains("files-1"))
        let unknown = try harness.ctl(["keys", "disable", "no-such-version"])
        #expect(unknown.code == 2)

        let forced = try harness.ctl(["keys", "disable", version, "--force"])
        #expect(forced.code == 0, "\(forced.stderr)")
        #expect(try harness.once().code == 1)  // critical: a version in use is disabled
        let after = try #require(try harness.ctl(["keys", "list", "--json"]).object()["versions"] as? [[String: Any]])
        #expect(after.first { $0["version"] as? String == version }?["enabled"] as? Bool == false)
        #expect(try harness.ctl(["keys", "enable", version]).code == 0)
        #expect(try harness.once().code == 0)
    }

    @Test func auditVerifyDetectsTampering() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        #expect(try harness.once().code == 0)
        #expect(try harness.ctl(["keys", "rotate"]).code == 0)
        let ok = try harness.ctl(["audit", "verify"])
        #expect(ok.code == 0, "\(ok.stderr)")
        #expect(ok.text.contains("chain intact"))

        let path = harness.state + "/security.log"
        var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.count > 2)
        lines[1] = lines[1].replacingOccurrences(of: "\"daemon\"", with: "\"user:mallory\"")
        try lines.joined(separator: "\n").write(toFile: path, atomically: false, encoding: .utf8)
        let broken = try harness.ctl(["audit", "verify"])
        #expect(broken.code == 1)
        #expect(broken.stderr.contains("BROKEN at line 2 (seq 2)"), "\(broken.stderr)")
    }

    @Test func syncWithoutADaemonFails() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let result = try harness.ctl(["sync"])
        #expect(result.code == 1)
        #expect(result.stderr.hasPrefix("cmkctl: cmk-syncer is not running (nothing holds \(harness.state)/daemon.lock); start it with"), "\(result.stderr)")
    }

    @Test func syncWaitAgainstARunningDaemon() async throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: try Harness.binary("cmk-syncer"))
        daemon.arguments = ["run", "--config", harness.config]
        daemon.standardOutput = FileHandle.nullDevice
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }

        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: harness.state + "/status.json") {
            guard daemon.isRunning else { Issue.record("cmk-syncer exited before writing status.json"); return }
            guard Date() < deadline else { Issue.record("cmk-syncer wrote no status.json within 30 s"); return }
            try await Task.sleep(for: .milliseconds(100))
        }
        let before = try harness.ctl(["status", "--json"]).object()
        let firstID = (before["report"] as? [String: Any])?["syncID"] as? String
        #expect((before["daemon"] as? [String: Any])?["running"] as? Bool == true)

        let sync = try harness.ctl(["sync", "--wait", "--timeout", "30"])
        #expect(sync.code == 0, "\(sync.stderr)")
        #expect(sync.text.contains("asked cmk-syncer (pid \(daemon.processIdentifier))"))
        let after = try harness.ctl(["status", "--json"]).object()
        #expect((after["report"] as? [String: Any])?["syncID"] as? String != firstID)

        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: harness.state + "/daemon.json"))
    }

    @Test func unknownAccountNamesTheConfiguredOnes() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let result = try harness.ctl(["data", "get", "nope", "object"])
        #expect(result.code == 2)
        #expect(result.stderr == "cmkctl: no account named nope (accounts: files-1, sql-1, audit-1)\n")
    }

    @Test("vault commands on a credential master key outside the service: exit 78 that says why, nothing created")
    func credentialMasterKeyOutsideTheService() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let yaml = try String(contentsOfFile: harness.config, encoding: .utf8)
            .replacingOccurrences(of: "master-key-file: \(harness.root)/master.key", with: "master-key-credential: vault-master-key")
        let config = harness.root + "/credential.yaml"
        try yaml.write(toFile: config, atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["CREDENTIALS_DIRECTORY"] = nil
        environment["CMK_SYNCER_CONFIG"] = nil
        for command in [["keys", "list"], ["accounts", "list"], ["data", "get", "files-1", "x"]] {
            let result = try Harness.run(try Harness.binary("cmkctl"), command + ["--config", config], environment: environment)
            #expect(result.code == 78, "\(command): \(result.stderr)")
            #expect(result.stderr.hasPrefix("cmkctl: this command opens the local vault, and its master key is a systemd credential (vault.local.master-key-credential in \(config)), which only the service receives."), "\(command): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: harness.state + "/vault"), "a refused command created the vault")
        let audit = try Harness.run(try Harness.binary("cmkctl"), ["audit", "verify", "--config", config], environment: environment)
        #expect(!audit.stderr.contains("only the service receives"), "\(audit.stderr)")
    }

    @Test func missingConfigurationIsExit78WithThePath() throws {
        let path = NSTemporaryDirectory() + "cmkctl-missing-\(UUID().uuidString).yaml"
        let result = try Harness.run(try Harness.binary("cmkctl"), ["status", "--config", path])
        #expect(result.code == 78)
        #expect(result.stderr.hasPrefix("cmkctl: "))
        #expect(result.stderr.contains(path))
        var environment = ProcessInfo.processInfo.environment
        environment["CMK_SYNCER_CONFIG"] = path
        let viaEnvironment = try Harness.run(try Harness.binary("cmkctl"), ["keys", "list"], environment: environment)
        #expect(viaEnvironment.code == 78)
        #expect(viaEnvironment.stderr.contains(path))
    }

    @Test func helpDocumentsExitCodesAndUsageErrorsExit2() throws {
        let help = try Harness.run(try Harness.binary("cmkctl"), ["--help"])
        #expect(help.code == 0)
        #expect(help.text.contains("78  the configuration is missing or invalid"))
        let usage = try Harness.run(try Harness.binary("cmkctl"), ["keys", "frobnicate"])
        #expect(usage.code == 2)
        let completion = try Harness.run(try Harness.binary("cmkctl"), ["--generate-completion-script", "bash"])
        #expect(completion.code == 0)
        #expect(completion.text.contains("cmkctl"))
    }
}
