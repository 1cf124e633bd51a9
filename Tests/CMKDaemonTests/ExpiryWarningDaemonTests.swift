import CMKConfiguration
import CMKCore
import CMKDaemon
import CMKSyncer
import CMKTesting
import Foundation
import Testing

/// `sync.expiry-warning` on the real daemon: the customer's key version runs out soon.
@Suite("Daemon: a current key version near its expiry")
struct ExpiryWarningDaemonTests {
    @Test("a current version expiring in 9 days: a catalogued warning once, '(expires in 8d, …)' in the status line on every pass")
    func warnsOnceAndShowsInStatus() async throws {
        let setup = try EmbeddedSetup(accounts: [("files-1", "file"), ("sql-1", "sql")])
        try """
            state-directory: \(setup.state)
            vault:
              provider: local
              local: {master-key-file: \(setup.state)/master.key, create: true}
            accounts:
              - {name: files-1, kind: file, create: true}
              - {name: sql-1, kind: sql, create: true}
            sync: {interval: 10m, jitter: 0%, expiry-warning: 10d}
            """.write(toFile: setup.configPath, atomically: true, encoding: .utf8)
        #expect(try await once(setup, "first").log.contains(MessageID.keyNearExpiry) == false)

        // The customer's version gets an expiry date 9 days out.
        let daemon = try await Daemon.build(configuration: try SyncerConfiguration.load(path: setup.configPath))
        guard case .present(let snapshot) = try await daemon.vault.snapshot(of: daemon.settings.key), let current = snapshot.current else {
            Issue.record("the key has no current version")
            return
        }
        let expires = Date().addingTimeInterval(9 * 86_400 - 3600)
        _ = try await #require(daemon.administration).updateVersion(daemon.settings.key, version: current.id, KeyVersionUpdate(expires: .set(expires)))

        let warned = try await once(setup, "warned")
        let lines = warned.log.split(separator: "\n").filter { $0.contains(MessageID.keyNearExpiry) }
        #expect(lines.count == 1, "\(warned.log)")
        #expect(lines.first?.contains(expires.ISO8601Format()) == true, "\(lines)")
        #expect(lines.first?.contains(current.id) == true)
        let report = try #require(try StateStore(directory: setup.state).readReport())
        #expect(report.state == .ok)
        #expect(StatusLine.make(report).contains("(expires in 8d, \(expires.ISO8601Format().prefix(10)))"), "\(StatusLine.make(report))")

        // Once per version: the next pass (a new process) keeps the status but does not warn again.
        let again = try await once(setup, "again")
        #expect(!again.log.contains(MessageID.keyNearExpiry), "\(again.log)")
        #expect(StatusLine.make(try #require(try StateStore(directory: setup.state).readReport())).contains("expires in 8d"))
    }

    private func once(_ setup: EmbeddedSetup, _ name: String) async throws -> DaemonProcess {
        let run = try DaemonProcess(arguments: ["run", "--once", "--config", setup.configPath, "--log-format", "json"], logPath: setup.root + "/\(name).log")
        #expect(await run.wait(timeout: .seconds(60)) == 0, "\(name): \(run.log)")
        return run
    }
}
