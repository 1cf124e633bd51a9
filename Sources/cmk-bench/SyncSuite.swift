import CMKCore
import Foundation

/// Suite 3: sync passes, each scenario in a child process (`cmk-bench scenario <json>`).
enum SyncSuite {
    /// Idle passes over each driver and account count.
    static func idle(_ plan: Plan, scratch: String, into results: inout Results) throws {
        for driver in SyncWorld.Driver.allCases {
            for count in plan.idleAccounts {
                let root = "\(scratch)/idle-\(driver.rawValue)-\(count)"
                var scenario = SyncScenario(kind: .idle, driver: driver, accounts: count, concurrency: 4, root: root)
                var setup = 0.0
                let label = "\(driver.rawValue), \(count.formatted()) accounts"
                let big = count >= 10_000
                let m: SyncScenario.Measurement
                do {
                    if driver != .memory {
                        scenario.setupOnly = true
                        setup = try child(scenario).setupSeconds
                        scenario.setupOnly = false
                        // Passes are minutes apart in the daemon: let the files written by the
                        // binding settle, or the drivers would not keep what they read from them.
                        Thread.sleep(forTimeInterval: Double(FileDerivedCache<Int>.settleMargin) + 0.5)
                    }
                    m = try child(scenario)
                } catch {
                    // A scenario that cannot run is a result too: it misses every target it has.
                    results.add(Figure(suite: "sync", name: "idle pass wall, \(label) — FAILED", value: .nan, unit: "s", maximum: big ? 1 : .infinity))
                    results.notes.append("idle \(label) failed: \(error)")
                    try? FileManager.default.removeItem(atPath: root)
                    continue
                }
                // The first pass after the process started reads every keyring; the later ones
                // are the steady state of a daemon that passes every 15 minutes.
                let median = Distribution(Array(m.passSeconds.dropFirst())).p50
                results.add(Figure(suite: "sync", name: "idle pass wall, \(label)", value: median, unit: "s", maximum: big ? 1 : nil,
                                   detail: ["first pass s": m.passSeconds.first ?? .nan, "setup s": setup + m.setupSeconds,
                                            "failures": Double(m.failures)]))
                results.add(Figure(suite: "sync", name: "first idle pass after start (cold), \(label)", value: m.passSeconds.first ?? .nan, unit: "s"))
                results.add(Figure(suite: "sync", name: "idle pass vault calls, \(label)", value: Double(m.vaultCalls), unit: "calls", exactly: 1))
                results.add(Figure(suite: "sync", name: "idle pass peak RSS, \(label)", value: Double(m.peakRSS), unit: "B",
                                   maximum: big ? 64 * 1_048_576 : nil, detail: ["RSS before passes B": Double(m.rssBefore)]))
                results.add(Figure(suite: "sync", name: "first idle pass after start (cold) peak RSS, \(label)", value: Double(m.coldPeakRSS), unit: "B"))
                if m.failures > 0 { results.notes.append("idle \(label): \(m.failures) accounts failed, first: \(m.firstFailure ?? "?")") }
                try? FileManager.default.removeItem(atPath: root)
            }
        }
    }

    /// Rotation passes through the throttled vault.
    static func rotation(_ plan: Plan, scratch: String, into results: inout Results) throws {
        for (driver, count, concurrency) in plan.rotations {
            let root = "\(scratch)/rotate-\(driver.rawValue)-\(count)-\(concurrency)"
            let label = "\(driver.rawValue), \(count.formatted()) accounts, concurrency \(concurrency)"
                + (plan.throttleAttempts == 1 ? ", no throttle retry" : "")
            let m: SyncScenario.Measurement
            do {
                var scenario = SyncScenario(kind: .rotate, driver: driver, accounts: count, concurrency: concurrency, root: root)
                scenario.throttleAttempts = plan.throttleAttempts
                m = try child(scenario)
            } catch {
                results.add(Figure(suite: "rotation", name: "throttling failures, \(label) — FAILED", value: .nan, unit: "accounts", exactly: 0))
                results.notes.append("rotation \(label) failed: \(error)")
                try? FileManager.default.removeItem(atPath: root)
                continue
            }
            let expected = Double(m.unwraps) / 200
            results.add(Figure(suite: "rotation", name: "pass wall, \(label)", value: m.passSeconds[0], unit: "s",
                               anchor: expected, anchorName: "unwraps ÷ 200/s",
                               detail: ["unwraps": Double(m.unwraps), "local wraps": Double(m.localWraps), "429s": Double(m.refused),
                                        "throttling failures": Double(m.throttlingFailures), "failures": Double(m.failures),
                                        "latency floor s": Double(m.unwraps) * 0.02 / Double(concurrency)]))
            results.add(Figure(suite: "rotation", name: "throttling failures, \(label)", value: Double(m.throttlingFailures), unit: "accounts",
                               exactly: 0, detail: ["429s": Double(m.refused), "unwraps": Double(m.unwraps), "local wraps": Double(m.localWraps)]))
            if m.failures > 0 { results.notes.append("rotation \(label): \(m.failures) accounts failed, first: \(m.firstFailure ?? "?")") }
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    /// Runs one scenario in a fresh child process and decodes what it measured.
    static func child(_ scenario: SyncScenario) throws -> SyncScenario.Measurement {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try DaemonBench.sibling("cmk-bench"))
        process.arguments = ["scenario", String(decoding: try JSONEncoder().encode(scenario), as: UTF8.self)]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let line = data.split(separator: UInt8(ascii: "\n")).last else {
            throw OpenSSLAnchor.Failure(description: "scenario \(scenario.kind) \(scenario.driver) \(scenario.accounts) failed with status \(process.terminationStatus)")
        }
        return try JSONDecoder().decode(SyncScenario.Measurement.self, from: Data(line))
    }
}
