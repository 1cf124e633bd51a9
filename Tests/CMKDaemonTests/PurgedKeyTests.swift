import CMKConfiguration
import CMKCore
import CMKDaemon
import Foundation
import Testing

/// A purged or vanished root key is never created again by a start with `create: true`
/// (issue 14, defect 2): the real daemon, real files.
@Suite("A purged key is never resurrected")
struct PurgedKeyTests {
    /// An embedded setup whose vault allows purging at once.
    private func setup() throws -> EmbeddedSetup {
        let setup = try EmbeddedSetup(accounts: [("files-1", "file")])
        let yaml = """
            state-directory: \(setup.state)
            vault:
              provider: local
              key: data-at-rest-rsa2048
              local: {master-key-file: \(setup.state)/master.key, create: true, purge-protection: false}
            accounts:
              - {name: files-1, kind: file, create: true}
            sync: {interval: 10m, jitter: 0%}
            """
        try yaml.write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        return setup
    }

    private func once(_ setup: EmbeddedSetup, _ name: String) async throws -> (code: Int32?, log: String) {
        let run = try DaemonProcess(arguments: ["run", "--once", "--config", setup.configPath], logPath: setup.root + "/\(name).log")
        return (await run.wait(), run.log)
    }

    private func keyFile(_ setup: EmbeddedSetup) -> String { setup.state + "/vault/keys/data-at-rest-rsa2048.json" }

    private func securityEvents(_ setup: EmbeddedSetup) throws -> [String] {
        let text = try String(contentsOfFile: setup.state + "/security.log", encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["event"] as? String
        }
    }

    /// Runs two more starts and checks that the key stays missing, critical, and that nothing says it is back.
    private func expectStaysMissing(_ setup: EmbeddedSetup) async throws {
        for attempt in 1...2 {
            let (code, log) = try await once(setup, "after-\(attempt)")
            #expect(code == CMKExitCode.failure, "start \(attempt): \(log)")
            #expect(!FileManager.default.fileExists(atPath: keyFile(setup)), "start \(attempt) created the key again")
            let report = try #require(try setup.report())
            #expect(report["state"] as? String == "critical")
            #expect((report["cause"] as? String)?.contains("missing") == true)
            #expect(!log.contains("The root key is back"))
        }
        let events = try securityEvents(setup)
        #expect(events.contains("key-purged-or-missing"))
        #expect(!events.contains("key-restored"))
    }

    @Test("after `keys purge`, starts with create: true leave the key missing (critical), forever")
    func purged() async throws {
        let setup = try setup()
        #expect(try await once(setup, "first").code == 0)
        let configuration = try SyncerConfiguration.load(path: setup.configPath)
        let admin = try #require(try await Daemon.build(configuration: configuration).administration)
        _ = try await admin.deleteKey(configuration.vault.key)
        try await admin.purgeKey(configuration.vault.key)
        try await expectStaysMissing(setup)
    }

    @Test("a key file deleted by hand is not created again either")
    func vanished() async throws {
        let setup = try setup()
        #expect(try await once(setup, "first").code == 0)
        try FileManager.default.removeItem(atPath: keyFile(setup))
        try await expectStaysMissing(setup)
    }
}
