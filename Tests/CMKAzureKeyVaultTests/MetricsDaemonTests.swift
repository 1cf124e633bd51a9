import CMKAzureTestServer
import CMKTesting
import Foundation
import Testing

/// The daemon's Prometheus metrics on a real run (issue 19; docs/metrics.md): `cmk-syncer run` on
/// the Azure provider against the test server with `metrics.listen` on loopback, taken through
/// rotate → pull → restore, a version in use disabled and enabled again, and an outage (nothing
/// listens at the vault's address). After each pass
/// the test scrapes `/metrics`, runs `promtool check metrics` on it and checks that the documented
/// counters and gauges moved. Then `promtool test rules` runs the alert rules
/// (packaging/cmk-syncer.rules.yml) on the scrapes laid out as a timeline (AlertRulesTestFile);
/// `CMK_METRICS_RULES_TEST=<path>` keeps that file (packaging/cmk-syncer.rules.test.yml is one).
@Suite("The daemon's metrics through rotate, pull, restore and an outage", .serialized)
struct MetricsDaemonTests {
    typealias World = SlowVaultDaemonTests.World
    static let key = SlowVaultDaemonTests.key

    /// Waits for the `count`th finished pass, reading the notify socket meanwhile (unread, it blocks sd_notify).
    static func waitForPass(_ world: World, _ count: Int, _ what: String) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while world.log.components(separatedBy: "Sync pass finished.").count - 1 < count {
            guard ContinuousClock.now < deadline else {
                Issue.record("\(what): pass \(count) did not finish in 60 s; log:\n\(world.log.suffix(3000))")
                throw PrometheusScrape.Failure(description: "no pass")
            }
            _ = world.notify?.collect(for: .milliseconds(100))
        }
    }

    /// Asks the running daemon for a pass (SIGUSR1) and waits for it.
    static func pass(_ world: World, _ count: Int, _ what: String) async throws {
        kill(try #require(world.daemon).processIdentifier, SIGUSR1)
        try await waitForPass(world, count, what)
    }

    static func scrape(_ port: Int, _ what: String, record: inout [AlertRulesTestFile.Phase], minutes: Int = 10, repeating: Bool = false) throws -> PrometheusScrape {
        let at = Date()
        let scrape = try PrometheusScrape.fetch(port: port)
        do { try scrape.check() } catch { Issue.record("\(what): \(error)") }
        record.append(.init(name: what, scrape: scrape, scrapedAt: at, minutes: minutes, repeating: repeating))
        return scrape
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test("rotate, pull, restore, disable, enable, outage: every scrape passes promtool check metrics; passes by outcome, accounts by state, key pulled 1 then 0, rebinds, suspensions, the current version's timestamps and unreachable vault calls move as documented")
    func scenario() async throws {
        try await SlowVaultDaemonTests.withWorld(accounts: 2, sync: "{interval: 10m, jitter: 0%, pulled-poll-interval: 10m, probe-interval: off}") { world in
            let port = try LoopbackPort.free()
            try (String(contentsOfFile: world.config, encoding: .utf8) + "\nmetrics: {listen: '127.0.0.1:\(port)'}\n")
                .write(toFile: world.config, atomically: true, encoding: .utf8)
            var record: [AlertRulesTestFile.Phase] = []
            let labelsFile = ["kind": "file", "reason": "none"]
            try world.start()

            try await Self.waitForPass(world, 1, "first pass")
            let first = try Self.scrape(port, "first", record: &record)
            #expect(first.value("cmk_syncer_passes_total", ["outcome": "ok"]) == 1)
            #expect(first.value("cmk_syncer_passes_total", ["outcome": "degraded"]) == 0, "the outcomes an alert uses exist before they happen")
            #expect(first.sum("cmk_syncer_accounts", matching: ["kind": "file"]) == 2)
            #expect(first.value("cmk_syncer_key_pulled") == 0)
            #expect(first.value("cmk_syncer_pass_duration_seconds_count") == 1)
            #expect((first.value("cmk_syncer_vault_requests_total", ["operation": "snapshot", "outcome": "ok"]) ?? 0) >= 1)
            #expect((first.value("cmk_syncer_vault_request_duration_seconds_count", ["operation": "snapshot"]) ?? 0) >= 1)
            #expect((first.value("cmk_syncer_last_successful_pass_timestamp_seconds") ?? 0) > Date().timeIntervalSince1970 - 120)
            #expect(first.value("cmk_syncer_last_pass_end_timestamp_seconds") == first.value("cmk_syncer_last_successful_pass_timestamp_seconds"))
            #expect(first.value("cmk_syncer_key_versions_referenced") == 1)
            #expect((first.value("process_resident_memory_bytes") ?? 0) > 1_000_000)
            #expect((first.value("process_open_fds") ?? 0) > 3)
            #expect((first.value("process_start_time_seconds") ?? 0) > Date().timeIntervalSince1970 - 600)
            let created = try #require(first.value("cmk_syncer_key_current_version_created_timestamp_seconds"))

            // Rotate: both accounts rebound to the new version.
            let version = try world.server.rotateKey(Self.key)
            try world.server.updateVersion(Self.key, version: version, expires: Date().addingTimeInterval(20 * 86_400))
            try await Self.pass(world, 2, "rotate")
            let rotated = try Self.scrape(port, "rotate", record: &record)
            #expect(rotated.value("cmk_syncer_passes_total", ["outcome": "ok"]) == 2)
            #expect(rotated.value("cmk_syncer_accounts", ["state": "rebound"].merging(labelsFile) { $1 }) == 2)
            #expect(rotated.value("cmk_syncer_account_rebinds_total").map { $0 - (first.value("cmk_syncer_account_rebinds_total") ?? 0) } == 2)
            // The vault dates versions in whole seconds: the rotation may share the first version's second.
            #expect((rotated.value("cmk_syncer_key_current_version_created_timestamp_seconds") ?? 0) >= created)
            let expiry = try #require(rotated.value("cmk_syncer_key_current_version_expiry_timestamp_seconds"), "the new version's expiry")
            #expect(abs(expiry - Date().addingTimeInterval(20 * 86_400).timeIntervalSince1970) < 120)
            #expect(rotated.value("cmk_syncer_key_versions_referenced") == 1, "old DEKs are rewrapped under the new version")
            #expect(rotated.value("cmk_syncer_key_versions_safe_to_disable") == 0, "the old version is kept for sync.backup-retention")
            #expect((rotated.value("cmk_syncer_vault_requests_total", ["operation": "unwrap", "outcome": "ok"]) ?? 0)
                    > (first.value("cmk_syncer_vault_requests_total", ["operation": "unwrap", "outcome": "ok"]) ?? 0))

            // Pull: the key deleted in the vault; every account suspended.
            try world.server.deleteKey(Self.key)
            try await Self.pass(world, 3, "pull")
            let pulled = try Self.scrape(port, "pull", record: &record)
            #expect(pulled.value("cmk_syncer_key_pulled") == 1)
            #expect(pulled.value("cmk_syncer_passes_total", ["outcome": "key-pulled"]) == 1)
            #expect(pulled.value("cmk_syncer_pass_outcome", ["outcome": "key-pulled"]) == 1)
            #expect(pulled.value("cmk_syncer_accounts", ["state": "suspended"].merging(labelsFile) { $1 }) == 2)
            #expect(pulled.value("cmk_syncer_accounts", ["state": "rebound"].merging(labelsFile) { $1 }) == 0, "a state no account has any more is 0")
            #expect(pulled.value("cmk_syncer_account_suspensions_total") == 2)
            #expect(pulled.value("cmk_syncer_last_successful_pass_timestamp_seconds") == rotated.value("cmk_syncer_last_pass_end_timestamp_seconds"))

            // Restore: the key recovered; suspensions lifted.
            try world.server.recoverKey(Self.key)
            try await Self.pass(world, 4, "restore")
            let restored = try Self.scrape(port, "restore", record: &record)
            #expect(restored.value("cmk_syncer_key_pulled") == 0)
            #expect(restored.value("cmk_syncer_accounts", ["state": "suspended"].merging(labelsFile) { $1 }) == 0)
            #expect(restored.sum("cmk_syncer_accounts", matching: ["kind": "file"]) == 2)
            #expect(restored.value("cmk_syncer_pass_outcome", ["outcome": "ok"]) == 1)
            #expect(restored.value("cmk_syncer_passes_total", ["outcome": "ok"]) == 3)
            #expect(restored.value("cmk_syncer_account_suspensions_total") == 2, "a counter never goes back")

            // A version in use disabled in the vault, then enabled again.
            try world.server.updateVersion(Self.key, version: version, enabled: false)
            try await Self.pass(world, 5, "disable")
            let disabled = try Self.scrape(port, "disable", record: &record)
            #expect(disabled.value("cmk_syncer_key_versions_disabled_in_use") == 1)
            #expect(disabled.value("cmk_syncer_pass_outcome", ["outcome": "ok"]) == 0)
            #expect(disabled.value("cmk_syncer_key_pulled") == 0)
            try world.server.updateVersion(Self.key, version: version, enabled: true)
            try await Self.pass(world, 6, "enable")
            let enabled = try Self.scrape(port, "enable", record: &record)
            #expect(enabled.value("cmk_syncer_key_versions_disabled_in_use") == 0)
            #expect(enabled.value("cmk_syncer_pass_outcome", ["outcome": "ok"]) == 1)

            // Outage: the vault's address now has nothing listening (the configuration points at a free
            // port, reloaded with SIGHUP, which runs a pass; the test server itself cannot be stopped
            // and restarted under a world).
            let config = try String(contentsOfFile: world.config, encoding: .utf8)
            try config.replacingOccurrences(of: "vault-url: \(world.server.vaultURL)", with: "vault-url: https://127.0.0.1:\(try LoopbackPort.free())")
                .write(toFile: world.config, atomically: true, encoding: .utf8)
            kill(try #require(world.daemon).processIdentifier, SIGHUP)
            try await Self.waitForPass(world, 7, "outage")
            let outage = try Self.scrape(port, "outage", record: &record, minutes: 30, repeating: true)
            #expect(outage.value("cmk_syncer_passes_total", ["outcome": "degraded"]) == 1)
            #expect((outage.value("cmk_syncer_vault_requests_total", ["operation": "snapshot", "outcome": "unreachable"]) ?? 0) >= 1)
            #expect((outage.value("cmk_syncer_vault_retries_total", ["layer": "pass"]) ?? 0) >= 1)
            #expect(outage.value("cmk_syncer_key_pulled") == 0, "an outage is not a pull")
            #expect(outage.value("cmk_syncer_account_suspensions_total") == 2, "an outage suspends nothing")
            #expect(outage.value("cmk_syncer_last_successful_pass_timestamp_seconds") == enabled.value("cmk_syncer_last_pass_end_timestamp_seconds"))
            #expect((outage.value("cmk_syncer_last_pass_end_timestamp_seconds") ?? 0) > (outage.value("cmk_syncer_last_successful_pass_timestamp_seconds") ?? .infinity))
            print("metrics scenario: \(record.map { "\($0.name) \($0.scrape.samples.count) samples" }.joined(separator: ", "))")
            try Self.testAlertRules(record, root: world.root)
        }
    }

    /// The alerts each phase of the run raises: the pull, the disabled version and (30 minutes of) the
    /// outage each their own; the test version's expiry in 20 days from the rotation on.
    static let expectations: [AlertRulesTestFile.Expectation] = [
        .init(minute: 5, alerts: []),
        .init(minute: 15, alerts: ["CMKSyncerKeyExpiringSoon"]),
        .init(minute: 25, alerts: ["CMKSyncerKeyExpiringSoon", "CMKSyncerKeyPulled"]),
        .init(minute: 35, alerts: ["CMKSyncerKeyExpiringSoon"]),
        .init(minute: 45, alerts: ["CMKSyncerKeyExpiringSoon", "CMKSyncerVersionDisabledInUse"]),
        .init(minute: 55, alerts: ["CMKSyncerKeyExpiringSoon"]),
        .init(minute: 65, alerts: ["CMKSyncerKeyExpiringSoon"]),
        .init(minute: 85, alerts: ["CMKSyncerKeyExpiringSoon", "CMKSyncerVaultUnreachable", "CMKSyncerNoSuccessfulPass", "CMKSyncerPassFailing"]),
    ]

    /// Writes the run's promtool test file and runs `promtool test rules` on it.
    static func testAlertRules(_ record: [AlertRulesTestFile.Phase], root: String) throws {
        let rulesPath = packageRoot + "/packaging/cmk-syncer.rules.yml"
        let rules = try String(contentsOfFile: rulesPath, encoding: .utf8)
        let keep = ProcessInfo.processInfo.environment["CMK_METRICS_RULES_TEST"].flatMap { $0.isEmpty ? nil : $0 }
        let header = """
            # promtool test rules for cmk-syncer.rules.yml, written by MetricsDaemonTests from the scrapes of a real
            # cmk-syncer run (Azure provider, test server): \(record.map { "\($0.name) (\($0.minutes)m)" }.joined(separator: ", ")).
            # Regenerate: CMK_METRICS_RULES_TEST=$PWD/packaging/cmk-syncer.rules.test.yml swift test --filter MetricsDaemonTests
            """
        let text = AlertRulesTestFile(phases: record, expectations: expectations)
            .render(rulesFile: keep == nil ? rulesPath : "cmk-syncer.rules.yml", rules: rules, header: header)
        let path = keep ?? root + "/cmk-syncer.rules.test.yml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output, errors) = try PrometheusScrape.run("promtool", ["test", "rules", path])
        #expect(status == 0, "promtool test rules \(path) exited \(status):\n\(output)\(errors)")
    }
}
