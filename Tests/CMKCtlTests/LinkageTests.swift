import Foundation
import Testing

/// `cmkctl` shares libraries with the daemon and the vault service, never their executables'
/// modules (issue 15): no symbol of CMKDaemon (the scheduler and systemd service) or
/// CMKVaultService (the HTTP server) is in the binary.
@Suite("cmkctl linkage")
struct LinkageTests {
    @Test("the cmkctl binary holds no CMKDaemon or CMKVaultService symbol; cmk-syncer holds CMKDaemon's (the check can see them)")
    func noDaemonModule() throws {
        let ctl = try Data(contentsOf: URL(fileURLWithPath: try Harness.binary("cmkctl")))
        // Nor the daemon's metrics (CMKMetrics, swift-prometheus): issue 19. swift-metrics' API (CoreMetrics)
        // comes in with postgres-nio, which cmkctl links for postgres accounts through CMKHost; without a
        // backend bootstrapped (cmkctl installs none) its counters record nothing.
        for module in ["CMKDaemon", "CMKVaultService", "Hummingbird", "CMKMetrics", "Prometheus"] {
            // Swift mangles a module name as its length then the name: 9CMKDaemon, 15CMKVaultService.
            let mangled = "\(module.utf8.count)\(module)"
            #expect(ctl.range(of: Data(mangled.utf8)) == nil, "cmkctl links \(module)")
        }
        let daemon = try Data(contentsOf: URL(fileURLWithPath: try Harness.binary("cmk-syncer")))
        #expect(daemon.range(of: Data("9CMKDaemon".utf8)) != nil, "the check cannot see CMKDaemon's symbols in cmk-syncer")
        #expect(daemon.range(of: Data("10CMKMetrics".utf8)) != nil && daemon.range(of: Data("10Prometheus".utf8)) != nil,
                "the check cannot see the metrics modules' symbols in cmk-syncer")
        #expect(ctl.range(of: Data("7CMKHost".utf8)) != nil, "cmkctl should link CMKHost")
    }
}
