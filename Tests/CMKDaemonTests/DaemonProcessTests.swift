import CMKAudit
import CMKConfiguration
import CMKCore
import CMKDaemon
import Foundation
import Testing

@Suite("cmk-syncer as a process: signals, reload, shutdown, exit codes", .serialized)
struct DaemonProcessTests {
    @Test("SIGUSR1 runs a pass, SIGHUP reloads (valid and invalid), SIGTERM stops cleanly with exit 0")
    func signals() async throws {
        let setup = try EmbeddedSetup()
        let daemon = try DaemonProcess(arguments: ["run", "--config", setup.configPath, "--log-format", "json"], logPath: setup.root + "/daemon.log")

        try await eventually("first report") { try setup.report() != nil }
        let first = try #require(try setup.report())
        #expect(first["state"] as? String == "ok")
        #expect((first["accounts"] as? [[String: Any]])?.count == 2)
        #expect(first["pid"] as? Int == Int(daemon.pid))
        #expect(first["nextPass"] != nil)
        let info = try #require(try StateStore(directory: setup.state).readDaemonInfo())
        #expect(info.pid == daemon.pid)

        // SIGUSR1: a new pass, with a new sync id.
        daemon.signal(SIGUSR1)
        try await eventually("pass after SIGUSR1") { try setup.report()?["syncID"] as? String != first["syncID"] as? String }
        #expect(daemon.log.contains(#""reasons":"signal""#))

        // SIGHUP with a valid new configuration: a third account appears.
        try setup.writeConfig(accounts: [("files-1", "file"), ("sql-1", "sql"), ("audit-1", "audit")])
        daemon.signal(SIGHUP)
        try await eventually("pass after reload") { (try setup.report()?["accounts"] as? [[String: Any]])?.count == 3 }
        #expect(daemon.log.contains("Configuration reloaded."))

        // SIGHUP with an invalid file: keeps the running configuration and says why.
        let before = try #require(try setup.report()?["syncID"] as? String)
        try "accounts: [{name: x, kind: blob}]\nvault: {provider: local}\n".write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        try await eventually("pass after failed reload") { try setup.report()?["syncID"] as? String != before }
        #expect(daemon.log.contains("Configuration reload failed; keeping the running configuration."))
        #expect(daemon.log.contains(#""cmk_config_key":"vault.local""#))
        #expect((try setup.report()?["accounts"] as? [[String: Any]])?.count == 3)
        #expect(daemon.process.isRunning)

        daemon.signal(SIGTERM)
        let status = await daemon.wait()
        #expect(status == 0, "exit status \(String(describing: status)); log:\n\(daemon.log)")
        #expect(!FileManager.default.fileExists(atPath: setup.state + "/daemon.json"))
        let events = try SecurityLog(stateDirectory: setup.state).records().map(\.event)
        #expect(events.first == .daemonStarted && events.last == .daemonStopped)
        #expect(events.contains(.configurationReloaded))
        #expect(try SecurityLog(stateDirectory: setup.state).verify().chainHolds)
        print("daemon process: SIGUSR1 pass, SIGHUP reload ok and invalid, SIGTERM exit 0 checked")
    }

    @Test("--once exits 0 in sync, 4 after a pull, 0 again after a restore")
    func once() async throws {
        let setup = try EmbeddedSetup()
        func once() async throws -> Int32? {
            let run = try DaemonProcess(arguments: ["run", "--once", "--config", setup.configPath], logPath: setup.root + "/once.log")
            return await run.wait()
        }
        #expect(try await once() == 0)
        let configuration = try SyncerConfiguration.load(path: setup.configPath)
        let daemon = try await Daemon.build(configuration: configuration)
        let admin = try #require(daemon.administration)
        _ = try await admin.deleteKey(configuration.vault.key)
        #expect(try await once() == 4)
        #expect(try setup.report()?["state"] as? String == "key-pulled")
        _ = try await admin.recoverKey(configuration.vault.key)
        #expect(try await once() == 0)
        #expect(try setup.report()?["outageSeconds"] != nil)
    }

    @Test("an invalid configuration exits 78 naming the key path, before doing anything")
    func badConfig() async throws {
        let setup = try EmbeddedSetup()
        try setup.writeConfig(accounts: [("files-1", "file")], extra: "cache: {ttl: 2h}")
        let run = try DaemonProcess(arguments: ["run", "--config", setup.configPath], logPath: setup.root + "/bad.log")
        #expect(await run.wait(timeout: .seconds(10)) == 78)
        #expect(run.log.contains("cache.ttl"))
        #expect(!FileManager.default.fileExists(atPath: setup.state + "/status.json"))
        let missing = try DaemonProcess(arguments: ["check-config", "--config", setup.root + "/nope.yaml"], logPath: setup.root + "/missing.log")
        #expect(await missing.wait(timeout: .seconds(10)) == 78)
        #expect(missing.log.contains(setup.root + "/nope.yaml"))
    }
}
