import CMKTesting
import Foundation
import Testing

/// The shipped alert rules (packaging/cmk-syncer.rules.yml, docs/metrics.md): `promtool check rules`
/// accepts them and `promtool test rules` passes on the series MetricsDaemonTests recorded from a real
/// run (packaging/cmk-syncer.rules.test.yml; that test also runs them on its own fresh scrapes).
@Suite struct MetricsAlertRulesTests {
    static let packaging = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path + "/packaging"

    @Test("promtool check rules passes on packaging/cmk-syncer.rules.yml, which has the six alerts issue 19 asks for and three of cmk-vault")
    func checkRules() throws {
        let (status, output, errors) = try PrometheusScrape.run("promtool", ["check", "rules", Self.packaging + "/cmk-syncer.rules.yml"])
        #expect(status == 0, "\(output)\(errors)")
        #expect(output.contains("SUCCESS: 9 rules found"), "\(output)")
        let rules = try String(contentsOfFile: Self.packaging + "/cmk-syncer.rules.yml", encoding: .utf8)
        for alert in ["CMKSyncerPassFailing", "CMKSyncerVaultUnreachable", "CMKSyncerKeyPulled", "CMKSyncerVersionDisabledInUse",
                      "CMKSyncerKeyExpiringSoon", "CMKSyncerNoSuccessfulPass", "CMKVaultTokenFailuresBurst", "CMKVaultSecurityLogFailing", "CMKVaultServerErrors"] {
            #expect(rules.contains("- alert: \(alert)\n"), "\(alert) is missing")
        }
    }

    @Test("promtool test rules passes on the recorded rotate, pull, restore, disable, enable and outage series")
    func testRules() throws {
        let (status, output, errors) = try PrometheusScrape.run("promtool", ["test", "rules", Self.packaging + "/cmk-syncer.rules.test.yml"])
        #expect(status == 0, "\(output)\(errors)")
        #expect(output.contains("SUCCESS"), "\(output)")
    }

    @Test("promtool test rules passes on cmk-vault's alerts: a token-failure burst, a security log that cannot record, 5xx for 10 minutes")
    func testVaultRules() throws {
        let (status, output, errors) = try PrometheusScrape.run("promtool", ["test", "rules", Self.packaging + "/cmk-vault.rules.test.yml"])
        #expect(status == 0, "\(output)\(errors)")
        #expect(output.contains("SUCCESS"), "\(output)")
    }
}
