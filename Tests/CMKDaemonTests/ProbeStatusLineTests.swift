import CMKCore
import CMKDaemon
import CMKSyncer
import Foundation
import Testing

/// The key-state probe's counts (issue 22): what `probe.json` keeps and what the status line says.
struct ProbeStatusLineTests {
    static let at = Date(timeIntervalSince1970: 1_800_000_000)

    static func report() -> SyncReport {
        SyncReport(syncID: "s", started: at, finished: at, state: .ok, cause: nil, key: "data-at-rest", currentVersion: "v2",
                   targetVersion: "v2", accounts: [], versions: [], vaultCalls: 1, retries: 0, pulledSince: nil, outageSeconds: nil,
                   pid: 1, nextPass: at.addingTimeInterval(900))
    }

    @Test func faultsAreCountedByCodeAndAGoodProbeEndsTheStreak() {
        var status = ProbeStatus(pid: 1, intervalSeconds: 10)
        status.record(.fault(ProbeFault(VaultError(.throttled, "429", retryAfter: .seconds(3)))), at: Self.at)
        status.record(.fault(ProbeFault(VaultError(.unavailable, "503"))), at: Self.at.addingTimeInterval(10))
        #expect(status.faults == 2 && status.consecutiveFaults == 2 && status.good == 0)
        #expect(status.faultsByCode == ["vault.throttled": 1, "vault.unavailable": 1])
        #expect(status.lastFaultCode == "vault.unavailable")
        #expect(status.failingPhrase == "probe failing (2x vault.unavailable)")
        status.record(.changed([.keyDeleted]), at: Self.at.addingTimeInterval(20))
        #expect(status.consecutiveFaults == 0 && status.good == 1 && status.passesStarted == 1)
        #expect(status.lastChanges == ["key-deleted"] && status.failingPhrase == nil)
        status.record(.unchanged, at: Self.at.addingTimeInterval(30))
        #expect(status.passesStarted == 1 && status.good == 2)
    }

    @Test func theStatusLineSaysWhileProbesFail() {
        var status = ProbeStatus(pid: 1, intervalSeconds: 10)
        #expect(StatusLine.make(Self.report(), probe: status) == StatusLine.make(Self.report()))
        status.record(.unchanged, at: Self.at)
        status.record(.fault(ProbeFault(VaultError(.forbidden, "403"))), at: Self.at.addingTimeInterval(10))
        let line = StatusLine.make(Self.report(), probe: status)
        #expect(line.hasPrefix("in sync: 0/0 accounts in sync, key data-at-rest vv2; probe failing (1x vault.forbidden, last good "), "\(line)")
        #expect(line.hasSuffix("; next pass \(String(Self.at.addingTimeInterval(900).ISO8601Format().dropFirst(11)))"), "\(line)")
    }

    @Test func theStatusFileRoundTrips() throws {
        let directory = NSTemporaryDirectory() + "probe-status-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(ProbeStatus.read(stateDirectory: directory) == nil)
        var status = ProbeStatus(pid: 42, intervalSeconds: 60)
        status.record(.fault(ProbeFault(VaultError(.unauthorized, "401"))), at: Self.at)
        try status.write(stateDirectory: directory)
        #expect(ProbeStatus.read(stateDirectory: directory) == status)
    }
}
