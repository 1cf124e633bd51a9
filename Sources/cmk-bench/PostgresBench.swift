import CMKCore
import CMKDirectoryStorage
import CMKPostgresStorage
import CMKTesting
import CMKTestingHTTP
import Foundation
import Glibc

/// Suite 12: the postgres storage driver and several daemons over the same accounts (issue 17).
/// A private PostgreSQL server (CMKTesting's ``PostgresServer``: initdb in a temporary directory)
/// and one real `cmk-vault` (the keys suite's ``KeysService``) that every daemon talks to, so the
/// three daemons share ONE budget: the service's `limits.key-operations-per-10s` of 2,000.
/// - 64 KiB objects put and read back on the postgres driver and on the directory driver, same run;
/// - `accounts` postgres accounts (all five kinds, as PostgresFleetTests makes them) created once;
/// - idle passes (SIGUSR1 → status.json rewritten) with one daemon, then with three at once;
/// - a rotation under the budget with one daemon (`run --once`), then with three: time against
///   unwraps ÷ budget, and duplicates = unwraps − DEKs − the daemons' check unwraps of the new version.
enum PostgresBench {
    static let key = KeysAPIBench.key
    static let budget = 2_000
    static let kinds = ["file", "sql", "audit", "analytics", "secret-store"]

    static func run(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        let server = try PostgresServer.start()
        defer { server.stop() }
        try server.psql("CREATE DATABASE bench OWNER \(server.user)")
        try server.psql("CREATE DATABASE bench_objects OWNER \(server.user)")
        try await objects(plan, server: server, scratch: scratch + "/pg-objects", into: &results)
        try await fleet(plan, server: server, scratch: scratch + "/pg-fleet", into: &results)
    }

    // MARK: 64 KiB objects, postgres against directory

    static func objects(_ plan: Plan, server: PostgresServer, scratch: String, into results: inout Results) async throws {
        let count = plan.mode == "quick" ? 300 : 2_000
        let size = 64 << 10
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let store = try PostgresStore(PostgresStorageConfiguration(
            endpoint: .unixSocket(directory: server.socketDirectory, port: server.port), database: "bench_objects", user: server.user,
            passwordFile: server.passwordFile, poolSize: 16))
        do {
            try await objects(count: count, size: size, store: store, scratch: scratch, into: &results)
        } catch {
            await store.shutdown()
            throw error
        }
        await store.shutdown()
    }

    static func objects(count: Int, size: Int, store: PostgresStore, scratch: String, into results: inout Results) async throws {
        let payload = Data((0..<size).map { _ in UInt8.random(in: 0...255) })
        let drivers: [(String, any StorageDriver)] = [
            ("directory", try DirectoryStorageDriver(directory: scratch + "/directory", account: "objects")),
            ("postgres", PostgresStorageDriver(store: store, account: "objects")),
        ]
        for concurrency in [1, 16] {
            var measured: [String: (put: Double, get: Double)] = [:]
            for (name, driver) in drivers {
                let prefix = "c\(concurrency)/o"
                let put = try await timed(count: count, concurrency: concurrency) { index in
                    let writer = try await driver.makeObjectWriter(try ObjectName("\(prefix)\(index)"))
                    try await writer.write(payload)
                    _ = try await writer.commit(.always)
                }
                let get = try await timed(count: count, concurrency: concurrency) { index in
                    let reader = try await driver.openObject(try ObjectName("\(prefix)\(index)"))
                    var read = 0
                    while let chunk = try await reader.next() { read += chunk.count }
                    await reader.close()
                    guard read == size else { throw OpenSSLAnchor.Failure(description: "\(name): read \(read) bytes of a \(size)-byte object") }
                }
                measured[name] = (Double(count) / put, Double(count) / get)
            }
            let directory = measured["directory"]!, postgres = measured["postgres"]!
            let anchor = "directory driver, same objects, same run"
            results.add(Figure(suite: "postgres", name: "object put 64 KiB (write + commit), postgres driver, concurrency \(concurrency)",
                               value: postgres.put, unit: "op/s", anchor: directory.put, anchorName: anchor, target: nil,
                               detail: ["MiB/s": postgres.put * Double(size) / 1_048_576, "directory MiB/s": directory.put * Double(size) / 1_048_576,
                                        "objects": Double(count)]))
            results.add(Figure(suite: "postgres", name: "object get 64 KiB (open + read), postgres driver, concurrency \(concurrency)",
                               value: postgres.get, unit: "op/s", anchor: directory.get, anchorName: anchor, target: nil,
                               detail: ["MiB/s": postgres.get * Double(size) / 1_048_576, "directory MiB/s": directory.get * Double(size) / 1_048_576,
                                        "objects": Double(count)]))
        }
    }

    /// Seconds to run `body(0..<count)` with at most `concurrency` at once.
    static func timed(count: Int, concurrency: Int, _ body: @escaping @Sendable (Int) async throws -> Void) async throws -> Double {
        let started = Measure.wall()
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            while next < min(concurrency, count) {
                let index = next
                group.addTask { try await body(index) }
                next += 1
            }
            while try await group.next() != nil, next < count {
                let index = next
                group.addTask { try await body(index) }
                next += 1
            }
            try await group.waitForAll()
        }
        return Measure.wall() - started
    }

    // MARK: Idle passes and rotations, one and three daemons

    /// One daemon's directory and configuration.
    struct Host {
        let root: String
        let index: Int
        var config: String { root + "/cmk-syncer.yaml" }
        var daemon: MetricsBench.Daemon { MetricsBench.Daemon(root: root, config: config) }
    }

    static func fleet(_ plan: Plan, server: PostgresServer, scratch: String, into results: inout Results) async throws {
        let accounts = plan.mode == "quick" ? min(1_000, plan.fleetAccounts) : plan.fleetAccounts
        var service = try await KeysService.start(root: scratch + "/vault", keyOperationsPer10s: 0, concurrency: 4)
        var running: [MetricsBench.QuietDaemon] = []
        do {
            let principal = try await service.servicePrincipalToken()
            let first = try await service.createKey(token: principal)
            var hosts: [Host] = []
            var identities: [(String, String)] = []
            for index in 1...3 {
                let identity = try service.ctl(["identities", "add", "pg-host-\(index).example", "--json"])
                identities.append((identity["clientId"] as? String ?? "", identity["secret"] as? String ?? ""))
                hosts.append(Host(root: "\(scratch)/host-\(index)", index: index))
            }
            func configure(_ daemons: Int) throws {
                for host in hosts {
                    try write(host, accounts: accounts, server: server, service: service, identity: identities[host.index - 1],
                              perHostBudget: budget / daemons)
                }
            }
            try configure(1)
            func sql(_ query: String) throws -> String { try server.psql(query, database: "bench") }

            // Setup: host-1 creates every keyring (no limit on the service).
            let setupStart = Measure.wall()
            try await runOnce(Array(hosts.prefix(1)))
            let setup = Measure.wall() - setupStart
            guard Int(try sql("SELECT count(*) FROM cmk_keyrings WHERE generation = 1")) == accounts else {
                throw OpenSSLAnchor.Failure(description: "setup: \(try sql("SELECT count(*) FROM cmk_keyrings")) keyrings for \(accounts) accounts")
            }
            results.notes.append("postgres: \(accounts.formatted()) accounts created and bound by one `run --once` in \(String(format: "%.1f", setup)) s (first version \(first))")
            let label = "\(accounts.formatted()) postgres accounts"
            try await keyringReads(accounts: accounts, server: server, label: label, into: &results)

            // Idle passes: host-1 alone, then the three at once.
            let rounds = plan.mode == "quick" ? 5 : 9
            for count in [1, 3] {
                let started = Measure.wall()
                for host in hosts[running.count..<count] {
                    running.append(try MetricsBench.QuietDaemon(daemon: host.daemon, timeout: plan.daemonReadyTimeout))
                }
                let cold = Measure.wall() - started
                var seconds: [Double] = [], cpu: [Double] = []
                for _ in 0..<rounds {
                    let cpu0 = running.map { Measure.cpuSeconds(pid: $0.pid) ?? 0 }
                    seconds.append(try passAll(running, hosts: Array(hosts.prefix(count))))
                    cpu.append(zip(running, cpu0).map { (Measure.cpuSeconds(pid: $0.pid) ?? 0) - $1 }.reduce(0, +) / Double(count))
                }
                let pass = Distribution(seconds)
                results.add(Figure(suite: "postgres", name: "idle pass (SIGUSR1 → status.json), \(label), \(count) daemon\(count > 1 ? "s at once" : "")",
                                   value: pass.p50, unit: "s", detail: [
                                       "passes": Double(pass.count), "min s": pass.min, "max s": pass.max,
                                       "daemon CPU s per pass (mean of daemons, p50)": Distribution(cpu).p50,
                                       "start → first pass done s": cold, "accounts": Double(accounts),
                                   ]))
            }
            for daemon in running { daemon.stop() }
            running = []

            // Rotations under the budget: one daemon, then three.
            service = try await service.restart(keyOperationsPer10s: budget)
            let adminToken = try await service.adminToken()
            var generation = 1
            for count in [1, 3] {
                try configure(count)
                let before = try await service.records(operation: "key-unwrapkey", token: adminToken)
                let deks = Int(try sql("SELECT sum(jsonb_array_length(convert_from(json, 'UTF8')::jsonb -> 'deks')) FROM cmk_keyrings")) ?? -1
                let version = try await service.createKey(token: try await service.servicePrincipalToken())
                let started = Measure.wall()
                try await runOnce(Array(hosts.prefix(count)))
                let seconds = Measure.wall() - started
                generation += 1
                let rebound = Int(try sql("SELECT count(*) FROM cmk_keyrings WHERE generation = \(generation)")) ?? -1
                let during = try await service.records(operation: "key-unwrapkey", from: before.next, token: adminToken).byVersion
                let unwraps = during.values.reduce(0, +), checks = during[version, default: 0]
                let byHolder = try sql("SELECT holder || '=' || count(*) FROM cmk_leases WHERE acquired > now() - make_interval(secs => \(seconds + 5)) GROUP BY holder ORDER BY holder")
                    .split(separator: "\n").joined(separator: ", ")
                let name = "rotation, \(label), \(count) daemon\(count > 1 ? "s" : ""), one budget of \(budget.formatted())/10 s"
                results.add(Figure(suite: "postgres", name: name, value: seconds, unit: "s",
                                   anchor: Double(unwraps) / (Double(budget) / 10), anchorName: "unwraps ÷ budget (200/s)", detail: [
                                       "unwraps": Double(unwraps), "DEKs": Double(deks), "check unwraps (new version)": Double(checks),
                                       "rebound": Double(rebound), "per-daemon client budget per 10 s": Double(budget / count),
                                   ]))
                results.add(Figure(suite: "postgres", name: "duplicates (unwraps − DEKs − check unwraps), \(name)",
                                   value: Double(unwraps - deks - checks), unit: "", exactly: 0,
                                   detail: ["unwraps": Double(unwraps), "DEKs": Double(deks), "check unwraps": Double(checks)]))
                results.add(Figure(suite: "postgres", name: "accounts not rebound, \(name)", value: Double(accounts - rebound), unit: "", exactly: 0))
                results.notes.append("postgres rotation with \(count) daemon(s): rebinds per daemon \(byHolder.isEmpty ? "?" : byHolder)")
            }
        } catch {
            for daemon in running { daemon.stop() }
            await service.stop()
            throw error
        }
        await service.stop()
    }

    /// Every account's keyring read at the pass's concurrency (16) in-process, through drivers that
    /// keep nothing yet (each JSON transferred and decoded: what every idle pass did before the kept
    /// keyring) and then again through the same drivers (kept: generation and xmin compared by the
    /// server, no JSON); three rounds with fresh drivers, wall and CPU seconds, p50.
    static func keyringReads(accounts: Int, server: PostgresServer, label: String, into results: inout Results) async throws {
        let store = try PostgresStore(PostgresStorageConfiguration(
            endpoint: .unixSocket(directory: server.socketDirectory, port: server.port), database: "bench", user: server.user,
            passwordFile: server.passwordFile, poolSize: 10))
        var fresh: [Double] = [], kept: [Double] = [], freshCPU: [Double] = [], keptCPU: [Double] = []
        do {
            for _ in 0..<3 {
                let drivers = (0..<accounts).map { PostgresStorageDriver(store: store, account: String(format: "pg-%05d", $0)) }
                for pass in 0..<2 {
                    let cpu = Measure.processCPU()
                    let seconds = try await timed(count: accounts, concurrency: 16) { index in
                        guard try await drivers[index].readKeyring() != nil else {
                            throw OpenSSLAnchor.Failure(description: "no keyring for pg-\(index)")
                        }
                    }
                    if pass == 0 { fresh.append(seconds); freshCPU.append(Measure.processCPU() - cpu) } else { kept.append(seconds); keptCPU.append(Measure.processCPU() - cpu) }
                }
            }
        } catch {
            await store.shutdown()
            throw error
        }
        await store.shutdown()
        let before = Distribution(fresh).p50
        results.add(Figure(suite: "postgres", name: "keyring reads in-process, \(label), concurrency 16, kept keyrings", value: Distribution(kept).p50, unit: "s",
                           anchor: before, anchorName: "the same reads through fresh drivers (every JSON decoded: before the kept keyring)", detail: [
                               "CPU s kept": Distribution(keptCPU).p50, "CPU s fresh": Distribution(freshCPU).p50, "rounds": 3,
                           ]))
    }

    /// A host's configuration: every account on postgres, the vault through cmk-vault's keys API
    /// with the host's platform identity and its share of the budget as its client-side limit.
    static func write(_ host: Host, accounts: Int, server: PostgresServer, service: KeysService, identity: (String, String), perHostBudget: Int) throws {
        try FileManager.default.createDirectory(atPath: host.root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let vault = AzureProviderSection(vaultService: service.url, tenantID: service.tenant, clientID: identity.0, caFile: service.ca.caCertificatePath,
                                         key: key, clientSecretFile: host.root + "/platform.secret",
                                         extra: ["rate-limit: {operations: \(perHostBudget), period: 10s}"])
        try vault.writeSecret(identity.1)
        var yaml = """
            state-directory: \(host.root)/state
            \(vault.yaml)
            postgres: {socket-directory: \(server.socketDirectory), port: \(server.port), database: bench, user: \(server.user), password-file: \(server.passwordFile), pool-size: 10}
            sync: {interval: 1h, jitter: 0%, probe-interval: off, concurrency: 16, start-timeout: 30m, instance-name: pg-host-\(host.index)}
            logging: {level: warning, format: text}
            accounts:

            """
        for index in 0..<accounts {
            yaml += "  - {name: pg-\(String(format: "%05d", index)), kind: \(kinds[index % kinds.count]), driver: postgres}\n"
        }
        try yaml.write(toFile: host.config, atomically: true, encoding: .utf8)
    }

    /// `cmk-syncer run --once` on every host at the same time; each must exit 0.
    static func runOnce(_ hosts: [Host]) async throws {
        try await FleetHost.runOnce(hosts.map { ($0.root, $0.config) })
    }

    /// SIGUSR1 to every daemon at once; the seconds until every one's status.json was rewritten.
    static func passAll(_ daemons: [MetricsBench.QuietDaemon], hosts: [Host]) throws -> Double {
        let status = hosts.map { $0.daemon.status }
        let before = status.map(MetricsBench.modified)
        let start = Measure.wall()
        for daemon in daemons { kill(daemon.pid, SIGUSR1) }
        var done = Array(repeating: false, count: status.count)
        while Measure.wall() - start < 300 {
            for index in status.indices where !done[index] {
                guard daemons[index].process.isRunning else { throw OpenSSLAnchor.Failure(description: "cmk-syncer exited during a pass; log \(daemons[index].log)") }
                if MetricsBench.modified(status[index]) != before[index] { done[index] = true }
            }
            if done.allSatisfy({ $0 }) { return Measure.wall() - start }
            usleep(2_000)
        }
        throw OpenSSLAnchor.Failure(description: "no pass within 300 s of SIGUSR1; logs \(daemons.map(\.log).joined(separator: ", "))")
    }
}
