import CMKAzureTestServer
import CMKTesting
import CMKTestingHTTP
import Foundation
import Glibc

/// Suite 9: the key-state probe (issue 22). Real `cmk-syncer run` processes on the Azure provider
/// against the Azure test server over loopback TLS, events off, a 15-minute poll (also while
/// pulled):
/// - pull → every account suspended (from then on the host refuses every read), with the probe at
///   10 s and at 60 s: 5 daemons share the vault and each of 6 pulls is a trial per daemon,
///   the pulls a random time apart; p50, p99 and max beside the pass interval (the poll alone);
/// - the idle cost of probing at `probeIdleAccounts` accounts: vault requests per hour, CPU
///   seconds per hour and resident memory of a daemon with the probe at 10 s and one with it
///   off, side by side in the same run.
enum ProbeBench {
    static let key = "data-at-rest-rsa2048"
    static let passInterval = 900.0

    /// One host: its directory, configuration and `cmk-syncer run` process.
    final class Host {
        let root: String
        let process = Process()
        var pid: Int32 { process.processIdentifier }

        init(root: String, server: AzureKeyVaultTestServer, ca: TestCertificateAuthority, secret: String, accounts: Int, probe: String) throws {
            self.root = root
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let vault = AzureProviderSection(testServer: server, ca: ca, key: ProbeBench.key, clientSecretFile: root + "/client.secret")
            try vault.writeSecret(secret)
            // Short lines (the location defaults to <state-directory>/accounts/<name>): 10,000 accounts stay under the 1 MiB file limit.
            let accountLines = (1...accounts).map { "  - {name: f-\($0), kind: file, create: true}" }
            try """
                state-directory: \(root)/state
                \(vault.yaml)
                accounts:
                \(accountLines.joined(separator: "\n"))
                sync: {interval: 15m, pulled-poll-interval: 15m, probe-interval: \(probe)}
                logging: {format: text, level: warning}
                """.write(toFile: root + "/cmk-syncer.yaml", atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: try DaemonBench.sibling("cmk-syncer"))
            process.arguments = ["run", "--config", root + "/cmk-syncer.yaml"]
            var environment = ProcessInfo.processInfo.environment
            for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS", "JOURNAL_STREAM"] { environment[name] = nil }
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
        }

        /// The last report's accounts' `suspended` flags, nil before the first pass.
        var suspended: [Bool]? {
            guard let data = FileManager.default.contents(atPath: root + "/state/status.json"),
                  let report = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
                  let accounts = report["accounts"] as? [[String: Any]], !accounts.isEmpty
            else { return nil }
            return accounts.map { $0["suspended"] as? Bool ?? false }
        }

        func stop() {
            guard process.isRunning else { return }
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(pid, SIGKILL) }
            process.waitUntilExit()
        }
    }

    static func run(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        for probe in [10.0, 60.0] {
            try await pullLatency(plan, probe: probe, scratch: scratch + "/probe-\(Int(probe))", into: &results)
        }
        try await idleCost(plan, scratch: scratch + "/probe-idle", into: &results)
    }

    static func withServer<T>(_ body: (AzureKeyVaultTestServer, TestCertificateAuthority, String) async throws -> T) async throws -> T {
        let ca = try TestCertificateAuthority.make()
        defer { ca.remove() }
        let secret = "probe-bench-\(UUID().uuidString)"
        let server = try await AzureKeyVaultTestServer.start(.init(clientSecret: secret), tls: ca.server)
        do {
            _ = try server.createKey(key)
            let value = try await body(server, ca, secret)
            try? await server.shutdown()
            return value
        } catch {
            try? await server.shutdown()
            throw error
        }
    }

    /// Waits until `check` holds for every host (at most `timeout` s); the seconds each took from `start`.
    static func until(_ hosts: [Host], from start: Double, timeout: Double, _ check: (Host) -> Bool) throws -> [Double] {
        var reached = [Double?](repeating: nil, count: hosts.count)
        while reached.contains(where: { $0 == nil }), Measure.wall() - start < timeout {
            if let gone = hosts.first(where: { !$0.process.isRunning }) {
                throw OpenSSLAnchor.Failure(description: "probe bench: cmk-syncer of \(gone.root) exited (status \(gone.process.terminationStatus)); run it with --config \(gone.root)/cmk-syncer.yaml to see why")
            }
            for index in hosts.indices where reached[index] == nil && check(hosts[index]) { reached[index] = Measure.wall() - start }
            usleep(50_000)
        }
        guard reached.allSatisfy({ $0 != nil }) else {
            throw OpenSSLAnchor.Failure(description: "probe bench: \(reached.filter { $0 == nil }.count) hosts did not follow within \(Int(timeout)) s")
        }
        return reached.map { $0! }
    }

    static func pullLatency(_ plan: Plan, probe: Double, scratch: String, into results: inout Results) async throws {
        // Full: 6 pulls × 5 hosts = 30 trials at 6 independent phases of the pull against the
        // probes' clocks (the hosts of a pull, started together, probe at nearly one phase).
        let rounds = plan.mode == "quick" ? 1 : 6
        let hostCount = plan.mode == "quick" ? 4 : 5
        let samples = try await withServer { server, ca, secret in
            let hosts = try (1...hostCount).map {
                try Host(root: scratch + "/host-\($0)", server: server, ca: ca, secret: secret, accounts: 2, probe: "\(Int(probe))s")
            }
            defer { for host in hosts { host.stop() } }
            _ = try until(hosts, from: Measure.wall(), timeout: 60) { $0.suspended == [false, false] }
            var samples: [Double] = []
            for _ in 0..<rounds {
                // A random moment within the probe interval, so each pull meets the probes at a random phase.
                usleep(UInt32(Double.random(in: 0..<probe) * 1_000_000))
                let pulled = Measure.wall()
                try server.deleteKey(key)
                samples += try until(hosts, from: pulled, timeout: probe * 1.2 + 60) { $0.suspended == [true, true] }
                let restored = Measure.wall()
                try server.recoverKey(key)
                _ = try until(hosts, from: restored, timeout: probe * 1.2 + 60) { $0.suspended == [false, false] }
            }
            return samples
        }
        let latency = Distribution(samples)
        results.add(Figure(suite: "probe", name: "pull -> every account suspended, probe \(Int(probe)) s, events off (\(latency.count) trials)",
                           value: latency.p50, unit: "s", maximum: probe * 1.1 + 10, anchor: passInterval / 2,
                           anchorName: "poll alone: p50 of a uniform wait over the 15 min pass interval",
                           detail: ["p99 s": latency.p99, "max s": latency.max, "min s": latency.min, "trials": Double(latency.count),
                                    "poll alone max s": passInterval * 1.1]))
    }

    static func idleCost(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        let accounts = plan.mode == "quick" ? 1_000 : 10_000
        let window = plan.mode == "quick" ? 60.0 : 300.0
        try await withServer { server, ca, secret in
            let on = try Host(root: scratch + "/on", server: server, ca: ca, secret: secret, accounts: accounts, probe: "10s")
            let off = try Host(root: scratch + "/off", server: server, ca: ca, secret: secret, accounts: accounts, probe: "off")
            defer { on.stop(); off.stop() }
            _ = try until([on, off], from: Measure.wall(), timeout: 1800) { $0.suspended?.count == accounts }
            server.clearRequests()
            let cpu0 = (Measure.cpuSeconds(pid: on.pid) ?? 0, Measure.cpuSeconds(pid: off.pid) ?? 0)
            let started = Measure.wall()
            usleep(UInt32(window * 1_000_000))
            let elapsed = Measure.wall() - started
            let cpu = ((Measure.cpuSeconds(pid: on.pid) ?? 0) - cpu0.0, (Measure.cpuSeconds(pid: off.pid) ?? 0) - cpu0.1)
            // Both daemons share the server: in the window, only the probing one makes vault requests
            // (the poll is 15 min away); the idle one's count is what is left over.
            let requests = Double(server.requests.filter { $0.endpoint == .vault }.count)
            let perHour = 3600 / elapsed
            let rss = (Double(Measure.statusBytes("VmRSS", pid: "\(on.pid)") ?? 0), Double(Measure.statusBytes("VmRSS", pid: "\(off.pid)") ?? 0))
            results.add(Figure(suite: "probe", name: "idle, \(accounts) accounts, probe 10 s: vault requests per hour", value: requests * perHour,
                               unit: "req/h", maximum: 2 * 360 * 1.1, detail: ["window s": elapsed, "requests": requests]))
            results.add(Figure(suite: "probe", name: "idle, \(accounts) accounts: CPU seconds per hour, probe 10 s", value: cpu.0 * perHour, unit: "s/h",
                               anchor: cpu.1 * perHour, anchorName: "the same daemon with the probe off",
                               detail: ["probe off s/h": cpu.1 * perHour, "window s": elapsed]))
            results.add(Figure(suite: "probe", name: "idle, \(accounts) accounts: resident memory, probe 10 s", value: rss.0 / 1_048_576, unit: "MiB",
                               anchor: rss.1 / 1_048_576, anchorName: "the same daemon with the probe off",
                               detail: ["probe off MiB": rss.1 / 1_048_576]))
        }
    }
}
