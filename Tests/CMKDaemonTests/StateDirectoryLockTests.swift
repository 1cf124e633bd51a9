import Foundation
import Testing

/// Issue 14, defect 7: two daemons on one state directory. The second must not run beside the
/// first (both would write `status.json` and `daemon.json`, and `cmkctl` would lose the first).
@Suite("one daemon per state directory")
struct StateDirectoryLockTests {
    @Test("a second daemon on the same state directory exits 1 naming the first; the first keeps running")
    func secondDaemonRefused() async throws {
        let setup = try EmbeddedSetup(accounts: [("files-1", "file")])
        let first = try DaemonProcess(arguments: ["run", "--config", setup.configPath, "--log-format", "text"],
                                      logPath: setup.root + "/first.log")
        try await eventually("the first daemon's report") { try setup.report() != nil }
        let daemonInfo = setup.state + "/daemon.json"
        let before = try Data(contentsOf: URL(fileURLWithPath: daemonInfo))

        let second = try DaemonProcess(arguments: ["run", "--config", setup.configPath, "--log-format", "text"],
                                       logPath: setup.root + "/second.log")
        let code = await second.wait(timeout: .seconds(20))
        #expect(code == 1, "the second daemon's exit status; log: \(second.log)")
        #expect(second.log.contains("another cmk-syncer (pid \(first.pid)) already runs on this state directory"), "\(second.log)")
        #expect(second.log.contains("a729425caaaf457c8fd45740e4be90ad") || second.log.contains("another cmk-syncer runs on this state directory"))
        #expect(first.process.isRunning)
        #expect(try Data(contentsOf: URL(fileURLWithPath: daemonInfo)) == before, "daemon.json still names the first daemon")

        first.signal(SIGTERM)
        #expect(await first.wait() == 0)
        // Once the first is gone, a new one starts.
        let third = try DaemonProcess(arguments: ["run", "--once", "--config", setup.configPath], logPath: setup.root + "/third.log")
        #expect(await third.wait() == 0, "\(third.log)")
    }
}

@Suite("a lost vault is never replaced")
struct LostVaultTests {
    @Test("create: true does not make a new vault where the last pass saw accounts bound to the old one")
    func vaultDirectoryRemoved() async throws {
        let setup = try EmbeddedSetup(accounts: [("files-1", "file")])
        let first = try DaemonProcess(arguments: ["run", "--once", "--config", setup.configPath], logPath: setup.root + "/first.log")
        #expect(await first.wait() == 0, "\(first.log)")
        try FileManager.default.removeItem(atPath: setup.state + "/vault")
        let second = try DaemonProcess(arguments: ["run", "--once", "--config", setup.configPath], logPath: setup.root + "/second.log")
        #expect(await second.wait() == 78, "\(second.log)")
        #expect(second.log.contains("restore the vault directory from a backup"), "\(second.log)")
        #expect(!FileManager.default.fileExists(atPath: setup.state + "/vault"), "no new vault was made")
    }
}
