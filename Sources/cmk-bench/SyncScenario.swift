import CMKCore
import CMKSyncer
import Foundation

/// One sync scenario, run in a child process of its own so that its peak RSS is its own.
struct SyncScenario: Codable, Sendable {
    enum Kind: String, Codable, Sendable {
        /// Opens N bound accounts and runs idle passes (nothing to do).
        case idle
        /// Binds N accounts, rotates the key and runs one pass through a ``ThrottledVault``.
        case rotate
    }

    var kind: Kind
    var driver: SyncWorld.Driver
    var accounts: Int
    var concurrency: Int
    /// Scratch directory of this scenario.
    var root: String
    /// Only bind the accounts (directory and SQLite, before an idle measurement in another child).
    var setupOnly = false
    /// Tries per vault call under throttling (1: no retry).
    var throttleAttempts = 8

    /// What the child measured.
    struct Measurement: Codable, Sendable {
        /// Wall seconds of each measured pass.
        var passSeconds: [Double] = []
        /// The most vault calls any measured pass made.
        var vaultCalls = 0
        var snapshots = 0
        var unwraps = 0
        var localWraps = 0
        /// Calls the throttled vault refused (HTTP 429).
        var refused = 0
        /// Accounts whose outcome failed because of throttling.
        var throttlingFailures = 0
        /// Accounts whose outcome failed for any reason.
        var failures = 0
        var firstFailure: String?
        /// RSS after the accounts were opened, before the measured passes.
        var rssBefore = 0
        /// Peak RSS during the idle passes after the first (VmHWM reset once the first pass ended).
        var peakRSS = 0
        /// Peak RSS during the first pass after the start (VmHWM reset once the accounts were open).
        var coldPeakRSS = 0
        var setupSeconds = 0.0
    }

    /// Runs in the child, under the daemon's heap policy (``ProcessMemory``).
    func run() async throws -> Measurement {
        ProcessMemory.configure()
        var m = Measurement()
        let setupStart = Measure.wall()
        let world = try SyncWorld(root: root, driver: driver, count: accounts)
        // Directory and SQLite accounts outlive the process: bind them once (a separate child,
        // see ``SyncSuite``) and only open them here. In-memory accounts are bound in-process.
        if kind == .rotate || driver == .memory || setupOnly {
            try await world.bindAll()
        }
        m.setupSeconds = Measure.wall() - setupStart
        if setupOnly { return m }
        switch kind {
        case .idle:
            m.rssBefore = Measure.statusBytes("VmRSS") ?? 0
            guard Measure.resetPeakRSS() else { throw OpenSSLAnchor.Failure(description: "cannot reset the peak RSS via /proc/self/clear_refs") }
            var previous: SyncReport?
            for _ in 0..<4 {
                let pass = world.pass(through: world.vault, concurrency: concurrency)
                let start = Measure.wall()
                let (report, _) = await pass.run(previous: previous)
                m.passSeconds.append(Measure.wall() - start)
                m.vaultCalls = max(m.vaultCalls, report.vaultCalls)
                record(report, into: &m)
                previous = report
                // As the daemon does after each pass.
                ProcessMemory.release()
                if m.passSeconds.count == 1 {
                    m.coldPeakRSS = Measure.statusBytes("VmHWM") ?? 0
                    guard Measure.resetPeakRSS() else { throw OpenSSLAnchor.Failure(description: "cannot reset the peak RSS via /proc/self/clear_refs") }
                }
            }
            m.peakRSS = Measure.statusBytes("VmHWM") ?? 0
        case .rotate:
            _ = try await world.vault.rotateKey(world.key)
            let throttled = ThrottledVault(world.vault, latency: .milliseconds(20), rate: 200, burst: 200)
            let pass = world.pass(through: throttled, concurrency: concurrency, throttleAttempts: throttleAttempts)
            let start = Measure.wall()
            let (report, events) = await pass.run(previous: nil)
            m.passSeconds.append(Measure.wall() - start)
            m.vaultCalls = report.vaultCalls
            let calls = throttled.calls
            m.snapshots = calls.snapshots
            m.unwraps = calls.unwraps
            m.refused = calls.throttled
            // Local wraps: the rewrapped DEKs and the minted ones, plus one verification probe per process.
            m.localWraps = 1 + events.filter { $0.kind == .accountRebound }.reduce(0) { sum, event in
                sum + (Int(event.fields["rewrapped_deks"] ?? "") ?? 0) + ((event.fields["minted_dek"] ?? "").isEmpty ? 0 : 1)
            }
            record(report, into: &m)
        }
        return m
    }

    private func record(_ report: SyncReport, into m: inout Measurement) {
        let failed = report.accounts.filter { $0.outcome.code == .failed }
        m.failures = max(m.failures, failed.count)
        m.throttlingFailures = max(m.throttlingFailures, failed.filter { $0.outcome.reason == VaultError.Code.throttled.description }.count)
        if m.firstFailure == nil, let first = failed.first { m.firstFailure = "\(first.name): \(first.outcome) \(first.outcome.detail ?? "")" }
    }
}
