import CMKAudit
import CMKConfiguration
import CMKCore
import CMKDaemon
import CMKSyncer
import CMKTesting
import Foundation
import Testing

/// The real `cmk-syncer` and its security log (issue 14): a log that cannot be appended is a
/// DEGRADED state with a catalogued journal entry (defect 5); a crash right after a keyring's
/// commit does not lose its `rebind`/`dek-minted` records (defect 8); a vanished log and a state
/// directory anyone may write are not accepted.
@Suite("cmk-syncer and its security log", .serialized)
struct SecurityLogDaemonTests {
    static let accounts = [("files-1", "file"), ("sql-1", "sql"), ("audit-1", "audit")]

    /// An embedded setup whose passes handle one account at a time, in configuration order.
    private func makeSetup() throws -> EmbeddedSetup {
        let setup = try EmbeddedSetup(accounts: Self.accounts)
        let list = Self.accounts.map { "  - {name: \($0.0), kind: \($0.1), create: true}" }.joined(separator: "\n")
        try """
            state-directory: \(setup.state)
            vault:
              provider: local
              local: {master-key-file: \(setup.state)/master.key, create: true}
            accounts:
            \(list)
            sync: {interval: 10m, jitter: 0%, concurrency: 1}
            """.write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        return setup
    }

    private func once(_ setup: EmbeddedSetup, _ name: String, environment: [String: String] = [:]) async throws -> DaemonProcess {
        let run = try DaemonProcess(arguments: ["run", "--once", "--config", setup.configPath, "--log-format", "json"],
                                    logPath: setup.root + "/\(name).log", environment: environment)
        #expect(await run.wait(timeout: .seconds(60)) != nil, "\(name) did not finish")
        return run
    }

    private func daemon(_ setup: EmbeddedSetup) async throws -> Daemon {
        try await Daemon.build(configuration: try SyncerConfiguration.load(path: setup.configPath))
    }

    /// Rotates the key; returns (old, new) current versions.
    private func rotate(_ setup: EmbeddedSetup) async throws -> (String, String) {
        let daemon = try await daemon(setup)
        let admin = try #require(daemon.administration)
        guard case .present(let before) = try await daemon.vault.snapshot(of: daemon.settings.key) else { throw Timeout(what: "no key") }
        let new = try await admin.rotateKey(daemon.settings.key)
        return (try #require(before.current?.id), new.id)
    }

    private func bindings(_ setup: EmbeddedSetup) async throws -> [String: Keyring] {
        var keyrings: [String: Keyring] = [:]
        for account in try await daemon(setup).accounts {
            keyrings[account.name] = try await account.driver.readKeyring()
        }
        return keyrings
    }

    @Test("killed right after a keyring's commit (rebind.after-commit#1), the rerun writes that account's rebind and dek-minted records, marked recovered")
    func crashAfterCommit() async throws {
        let setup = try makeSetup()
        let first = try await once(setup, "first")
        #expect(first.process.terminationStatus == 0, "\(first.log)")
        let (old, new) = try await rotate(setup)

        let crashed = try await once(setup, "crash", environment: ["CMK_CRASH_AT": "rebind.after-commit#1"])
        #expect(crashed.process.terminationReason == .uncaughtSignal && crashed.process.terminationStatus == SIGKILL,
                "the daemon should have died by SIGKILL: \(crashed.process.terminationReason) \(crashed.process.terminationStatus)\n\(crashed.log)")
        let afterCrash = try await bindings(setup)
        let committed = afterCrash.filter { $0.value.binding == new }.map(\.key)
        try #require(committed.count == 1, "one account should be committed under \(new): \(afterCrash.mapValues(\.binding))")
        let account = committed[0]
        let log = SecurityLog(stateDirectory: setup.state)
        #expect(try log.records().filter { $0.account == account && $0.version == new }.isEmpty, "the crash left no record for \(account)")

        let rerun = try await once(setup, "rerun")
        #expect(rerun.process.terminationStatus == 0, "\(rerun.log)")
        let keyring = try #require(try await bindings(setup)[account])
        let records = try log.records().filter { $0.account == account && $0.version == new }
        let rebind = try #require(records.first { $0.event == .rebind }, "no rebind record for \(account): \(records)")
        #expect(rebind.previousVersion == old)
        #expect(rebind.details["recovered"] == "true")
        let minted = try #require(records.first { $0.event == .dekMinted }, "no dek-minted record for \(account): \(records)")
        #expect(minted.details["dek"] == keyring.activeDEK.description)
        #expect(minted.details["recovered"] == "true")
        // The others were rebound by the rerun itself: ordinary records, none recovered.
        for other in Self.accounts.map(\.0) where other != account {
            let theirs = try log.records().filter { $0.account == other && $0.version == new && $0.event == .rebind }
            #expect(theirs.count == 1 && theirs[0].details["recovered"] == nil, "\(other): \(theirs)")
        }
        #expect(try log.verify().chainHolds)
        #expect(rerun.log.contains("A security-log record the log lacked was written from the account's keyring, marked recovered."))

        // Nothing more to recover: another pass writes no further records for the account.
        let count = try log.records().count
        _ = try await once(setup, "idle")
        #expect(try log.records().filter { $0.details["recovered"] != nil }.count == 2)
        #expect(try log.records().count == count + 2, "an idle pass writes only daemon-started and daemon-stopped")
    }

    @Test("garbage appended to the log: the daemon still rebinds, reports DEGRADED (exit 3) with a catalogued journal entry, and recovers the records once the log is cut back")
    func garbageAppended() async throws {
        let setup = try makeSetup()
        #expect(try await once(setup, "first").process.terminationStatus == 0)
        let (_, new) = try await rotate(setup)
        let logPath = setup.state + "/" + SecurityLog.fileName
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("garbage\n".utf8))
        try handle.close()

        let broken = try await once(setup, "broken")
        #expect(broken.process.terminationStatus == 3, "\(broken.log)")
        let report = try #require(try StateStore(directory: setup.state).readReport())
        #expect(report.state == .degraded)
        #expect(report.securityLog == "audit.corrupt: a record is broken; run cmkctl audit verify")
        #expect(report.cause == "security log cannot be appended (audit.corrupt: a record is broken; run cmkctl audit verify)")
        #expect(StatusLine.make(report).hasPrefix("DEGRADED: security log cannot be appended (audit.corrupt"))
        // The key protection keeps working: every account is rebound to the new version.
        #expect(report.accounts.allSatisfy { $0.binding == new }, "\(report.accounts.map(\.binding))")
        #expect(broken.log.contains(MessageID.securityLogUnwritable))
        #expect(broken.log.contains("The security log cannot be appended; key changes are made but not recorded in it."))

        // Cut back to the last good record: the next pass is in sync and writes the lost rebinds.
        let log = SecurityLog(stateDirectory: setup.state)
        let good = try log.verify().verifiedBytes
        #expect(truncate(logPath, off_t(good)) == 0)
        let repaired = try await once(setup, "repaired")
        #expect(repaired.process.terminationStatus == 0, "\(repaired.log)")
        let after = try #require(try StateStore(directory: setup.state).readReport())
        #expect(after.state == .ok && after.securityLog == nil)
        #expect(repaired.log.contains("The security log can be appended again."))
        let recovered = try log.records().filter { $0.event == .rebind && $0.version == new && $0.details["recovered"] == "true" }
        #expect(Set(recovered.compactMap(\.account)) == Set(Self.accounts.map(\.0)))
        #expect(try log.verify().outcome == .intact)
    }

    @Test("a log that vanished after it was started is DEGRADED (audit.missing) and is not silently started again")
    func vanishedLog() async throws {
        let setup = try makeSetup()
        #expect(try await once(setup, "first").process.terminationStatus == 0)
        let logPath = setup.state + "/" + SecurityLog.fileName
        try FileManager.default.removeItem(atPath: logPath)
        let run = try await once(setup, "vanished")
        #expect(run.process.terminationStatus == 3, "\(run.log)")
        let report = try #require(try StateStore(directory: setup.state).readReport())
        #expect(report.cause?.contains("security log cannot be appended (audit.missing") == true, "\(report.cause ?? "nil")")
        #expect(!FileManager.default.fileExists(atPath: logPath))
        guard case .vanished = try SecurityLog(stateDirectory: setup.state).verify().outcome else {
            Issue.record("verify should report the log as vanished")
            return
        }
    }

    @Test("a state directory at mode 0777 is refused at start (exit 78) in FileAccessRule's words")
    func worldWritableStateDirectory() async throws {
        let setup = try makeSetup()
        try FileManager.default.createDirectory(atPath: setup.state, withIntermediateDirectories: true)
        #expect(chmod(setup.state, 0o777) == 0)
        let run = try await once(setup, "open")
        #expect(run.process.terminationStatus == 78, "\(run.log)")
        #expect(run.log.replacingOccurrences(of: "\\/", with: "/").contains("state directory '\(setup.state)' has mode 0777, which lets group or others write it; fix it with: chmod 700 '\(setup.state)'"))
        #expect(!FileManager.default.fileExists(atPath: setup.state + "/status.json"))
    }
    @Test("the real STATUS= line turns DEGRADED while the log cannot be appended and back to in sync once it is cut back")
    func statusLine() async throws {
        let setup = try makeSetup()
        let listener = try NotifyListener(path: setup.root + "/notify.sock")
        let daemon = try DaemonProcess(arguments: ["run", "--config", setup.configPath, "--log-format", "json"],
                                       logPath: setup.root + "/daemon.log", environment: ["NOTIFY_SOCKET": listener.path])
        let ready = try #require(listener.nextStatus(within: .seconds(60)), "no STATUS=; log:\n\(daemon.log)")
        #expect(ready.hasPrefix("in sync: 3/3 accounts in sync"), "\(ready)")

        let logPath = setup.state + "/" + SecurityLog.fileName
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("garbage\n".utf8))
        try handle.close()
        daemon.signal(SIGUSR1)
        let degraded = try #require(listener.nextStatus(within: .seconds(60)), "no STATUS= after SIGUSR1")
        #expect(degraded.hasPrefix("DEGRADED: security log cannot be appended (audit.corrupt: a record is broken; run cmkctl audit verify); 3/3 accounts in sync"),
                "\(degraded)")

        let good = try SecurityLog(stateDirectory: setup.state).verify().verifiedBytes
        #expect(truncate(logPath, off_t(good)) == 0)
        daemon.signal(SIGUSR1)
        let repaired = try #require(listener.nextStatus(within: .seconds(60)), "no STATUS= after the repair")
        #expect(repaired.hasPrefix("in sync: 3/3 accounts in sync"), "\(repaired)")
        daemon.signal(SIGTERM)
        #expect(await daemon.wait() == 0)
    }
}
