import CMKAzureTestServer
import CMKTesting
import CMKTestingHTTP
import Foundation
import Testing

/// Work sharing (issue 17): three real `cmk-syncer` daemons serve the same 300 accounts (all five
/// kinds) in one PostgreSQL database (a private server) and one vault (the Azure test server,
/// which records every request, so its unwraps are counted). Each daemon has `cache.ttl: 1s`, so a
/// DEK one daemon unwrapped earlier never saves an unwrap later: the count is the work done.
/// - After a rotation every account is rebound once: unwraps = DEKs (300) plus each daemon's one
///   proof of the new version (DEKResolver.verify), every keyring at
///   generation 2, and the work spread over more than one daemon.
/// - `kill -9` of one daemon while it holds leases (its unwraps slowed by the vault): the others
///   leave its leased accounts to it ("handled-elsewhere") until `postgres.lease-time` (5 s) runs
///   out, then finish them; every keyring ends at generation 3, and the unwraps exceed the 600
///   DEKs and 3 proofs by at most what the killed daemon had in flight (4 accounts x 2 DEKs).
@Suite("Three daemons over the same PostgreSQL accounts", .serialized)
struct PostgresFleetTests {
    static let key = "fleet-rsa2048"
    static let accountCount = 300
    static let kinds = ["file", "sql", "audit", "analytics", "secret-store"]

    final class Fleet {
        let server: AzureKeyVaultTestServer
        let postgres: PostgresServer
        let database: String
        let root: String
        var daemons: [Process?] = []
        /// The key's first version.
        var first = ""

        init() async throws {
            postgres = try PostgresServer.shared()
            database = "fleet_" + String(UInt32.random(in: .min ... .max), radix: 16)
            try postgres.psql("CREATE DATABASE \(database) OWNER \(postgres.user)")
            let ca = try TestServerTests.authority.get()
            let secret = "fleet-secret-\(UUID().uuidString)"
            server = try await AzureKeyVaultTestServer.start(.init(clientSecret: secret), tls: ca.server)
            root = NSTemporaryDirectory() + "cmk-pg-fleet-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let vault = AzureProviderSection(testServer: server, ca: ca, key: PostgresFleetTests.key, clientSecretFile: root + "/client.secret")
            try vault.writeSecret(secret)
            let accounts = (1...PostgresFleetTests.accountCount).map { index in
                "  - {name: acct-\(String(format: "%03d", index)), kind: \(PostgresFleetTests.kinds[index % 5]), driver: postgres}"
            }.joined(separator: "\n")
            for host in 1...3 {
                try FileManager.default.createDirectory(atPath: root + "/host-\(host)", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                try """
                    state-directory: \(root)/host-\(host)/state
                    \(vault.yaml)
                    accounts:
                    \(accounts)
                    postgres: {socket-directory: \(postgres.socketDirectory), port: \(postgres.port), database: \(database), user: \(postgres.user), password-file: \(postgres.passwordFile), pool-size: 4, lease-time: 5s}
                    sync: {interval: 1h, jitter: 0%, probe-interval: off, concurrency: 4, instance-name: host-\(host)}
                    cache: {ttl: 1s}
                    logging: {format: text}
                    """.write(toFile: config(host), atomically: true, encoding: .utf8)
            }
            first = try server.createKey(PostgresFleetTests.key)
        }

        func config(_ host: Int) -> String { root + "/host-\(host)/cmk-syncer.yaml" }
        func log(_ host: Int) -> String { (try? String(contentsOfFile: root + "/host-\(host)/daemon.log", encoding: .utf8)) ?? "" }

        func start() throws {
            for host in 1...3 {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: try SlowVaultDaemonTests.binary("cmk-syncer"))
                process.arguments = ["run", "--config", config(host)]
                var environment = ProcessInfo.processInfo.environment
                for name in ["CMK_SYNCER_CONFIG", "JOURNAL_STREAM", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "CMK_HANG_AT", "CMK_CRASH_AT"] {
                    environment[name] = nil
                }
                process.environment = environment
                let logPath = root + "/host-\(host)/daemon.log"
                _ = FileManager.default.createFile(atPath: logPath, contents: nil)
                process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
                process.standardError = process.standardOutput
                try process.run()
                daemons.append(process)
            }
        }

        /// Asks the live daemons among `hosts` for a pass now (SIGUSR1, as `cmkctl sync` does).
        func requestPass(_ hosts: [Int] = [1, 2, 3]) {
            for host in hosts { if let process = daemons[host - 1], process.isRunning { kill(process.processIdentifier, SIGUSR1) } }
        }

        func kill9(_ host: Int) {
            guard let process = daemons[host - 1] else { return }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            daemons[host - 1] = nil
        }

        func report(_ host: Int) -> [String: Any]? {
            guard let data = FileManager.default.contents(atPath: root + "/host-\(host)/state/status.json") else { return nil }
            return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        }

        /// The accounts of `host`'s last report.
        func accounts(_ host: Int) -> [[String: Any]] { report(host)?["accounts"] as? [[String: Any]] ?? [] }

        func sql(_ query: String) throws -> String { try postgres.psql(query, database: database) }

        /// How many keyrings are at `generation`.
        func keyrings(atGeneration generation: Int) throws -> Int {
            Int(try sql("SELECT count(*) FROM cmk_keyrings WHERE generation = \(generation)")) ?? -1
        }

        /// Unwraps the vault performed (answered 200): a throttled or failed request unwrapped nothing.
        var unwraps: Int { unwrapRequests.filter { $0.status == 200 }.count }
        var unwrapRequests: [RecordedRequest] {
            server.requests.filter { $0.endpoint == .vault && $0.method == "POST" && $0.path.hasSuffix("/unwrapkey") }
        }
        /// Unwrap requests by answer (`200=300, 429=2`), for the messages.
        var unwrapAnswers: String {
            Dictionary(grouping: unwrapRequests, by: { $0.status.map(String.init) ?? "closed" }).map { "\($0.key)=\($0.value.count)" }.sorted().joined(separator: ", ")
        }

        /// Polls (asking `hosts` for a pass every 2 s) until `condition` holds or `timeout` passes.
        func until(_ what: String, timeout: Duration, asking hosts: [Int] = [1, 2, 3], _ condition: () throws -> Bool) async throws {
            let deadline = ContinuousClock.now + timeout
            var asked = ContinuousClock.now
            while ContinuousClock.now < deadline {
                if (try? condition()) == true { return }
                if ContinuousClock.now - asked > .seconds(2) {
                    requestPass(hosts)
                    asked = ContinuousClock.now
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            if (try? condition()) == true { return }
            Issue.record("timed out after \(timeout) waiting for: \(what); host-1 log tail:\n\(log(1).suffix(3000))")
            throw Timeout(what: what)
        }

        struct Timeout: Error { let what: String }

        func close() async {
            for index in daemons.indices { if daemons[index] != nil { kill9(index + 1) } }
            try? await server.shutdown()
            _ = try? postgres.psql("DROP DATABASE IF EXISTS \(database) WITH (FORCE)")
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    /// Every account of every live host's last report is bound to `version` and in sync.
    static func allBound(_ fleet: Fleet, to version: String, hosts: [Int]) -> Bool {
        hosts.allSatisfy { host in
            let accounts = fleet.accounts(host)
            return accounts.count == accountCount && accounts.allSatisfy {
                $0["binding"] as? String == version && ["in-sync", "rebound"].contains(($0["outcome"] as? [String: Any])?["code"] as? String)
            }
        }
    }

    @Test("3 daemons, 300 postgres accounts, one vault: a rotation unwraps each DEK once; kill -9 mid-pass leaves nothing behind after the lease time")
    func threeDaemonsShareTheWork() async throws {
        let fleet = try await Fleet()
        do {
            try await run(fleet)
        } catch {
            await fleet.close()
            throw error
        }
        await fleet.close()
    }

    func run(_ fleet: Fleet) async throws {
        let first = fleet.first
        try fleet.start()
        try await fleet.until("every account created and bound to the first version on every host", timeout: .seconds(60)) {
            Self.allBound(fleet, to: first, hosts: [1, 2, 3])
        }
        #expect(try fleet.keyrings(atGeneration: 1) == Self.accountCount, "each keyring created once")

        // Rotation: the three daemons at once.
        try await Task.sleep(for: .milliseconds(1200))  // cached DEKs (ttl 1s) gone
        fleet.server.clearRequests()
        let second = try fleet.server.rotateKey(Self.key)
        let rotated = ContinuousClock.now
        fleet.requestPass()
        try await fleet.until("every account rebound to the second version on every host", timeout: .seconds(60)) {
            Self.allBound(fleet, to: second, hosts: [1, 2, 3])
        }
        print("postgres fleet: 3 daemons rebound \(Self.accountCount) accounts in \(ContinuousClock.now - rotated)")
        // Each daemon proves a new version once (DEKResolver.verify wraps and unwraps a probe): 3 more.
        #expect(fleet.unwraps == Self.accountCount + 3, "unwraps \(fleet.unwraps) for \(Self.accountCount) DEKs (requests by answer: \(fleet.unwrapAnswers)): an account was rebound more than once")
        #expect(try fleet.keyrings(atGeneration: 2) == Self.accountCount)
        let holders = try fleet.sql("SELECT holder || '=' || count(*) FROM cmk_leases GROUP BY holder ORDER BY holder")
        print("postgres fleet: rebinds per daemon: \(holders.split(separator: "\n").joined(separator: ", "))")
        #expect(holders.split(separator: "\n").count >= 2, "one daemon did all the work: \(holders)")
        // Every report names the daemon that last handled each account: the lease's last holder.
        let lastHolders = Dictionary(uniqueKeysWithValues: try fleet.sql("SELECT account || ' ' || holder FROM cmk_leases").split(separator: "\n").map {
            let parts = $0.split(separator: " ")
            return (String(parts[0]), String(parts[1]))
        })
        try await fleet.until("a pass after the rotation on every host (handled-by from the lease table)", timeout: .seconds(20)) {
            (1...3).allSatisfy { host in fleet.accounts(host).allSatisfy { ($0["handledBy"] as? String) == lastHolders[$0["name"] as? String ?? ""] } }
        }
        let status = try await ReaderThrottleCLITests.run("cmkctl", ["status", "--config", fleet.config(2)]).stdout
        #expect(status.contains("HANDLED-BY") && status.contains("host-1") && status.contains("host-3"), "\(status.prefix(2000))")
        let statusJSON = try await ReaderThrottleCLITests.run("cmkctl", ["status", "--json", "--config", fleet.config(3)]).stdout
        let json = try #require(try JSONSerialization.jsonObject(with: Data(statusJSON.utf8)) as? [String: Any])
        let jsonAccounts = try #require((json["report"] as? [String: Any])?["accounts"] as? [[String: Any]])
        #expect(jsonAccounts.count == Self.accountCount && jsonAccounts.allSatisfy { $0["handledBy"] as? String != nil })

        // kill -9 of host-1 while it holds leases: its unwraps take 300 ms, so it is mid-pass.
        try await Task.sleep(for: .milliseconds(1200))
        fleet.server.clearRequests()
        fleet.server.inject(.latency(.milliseconds(300)), times: 100_000, matching: .unwrap)
        let third = try fleet.server.rotateKey(Self.key)
        fleet.requestPass([1])
        try await fleet.until("host-1 has rebound 10 accounts and holds a lease", timeout: .seconds(30), asking: []) {
            try fleet.keyrings(atGeneration: 3) >= 10
                && (Int(try fleet.sql("SELECT count(*) FROM cmk_leases WHERE holder = 'host-1' AND expires > now()")) ?? 0) > 0
        }
        fleet.kill9(1)
        let killed = ContinuousClock.now
        fleet.server.clearFaults()
        let held = try fleet.sql("SELECT account FROM cmk_leases WHERE holder = 'host-1' AND expires > now() ORDER BY account")
            .split(separator: "\n").map(String.init)
        #expect(!held.isEmpty, "host-1 held no lease when it was killed")
        print("postgres fleet: host-1 killed holding \(held.count) lease(s): \(held.joined(separator: ", "))")
        fleet.requestPass([2, 3])
        // While host-1's leases run, the others leave its accounts to it, naming it.
        var leftToHost1: Set<String> = []
        try await fleet.until("every keyring at generation 3 (host-1's leased accounts finished by the others)", timeout: .seconds(40), asking: [2, 3]) {
            for host in 2...3 {
                for account in fleet.accounts(host) where ((account["outcome"] as? [String: Any])?["code"] as? String) == "handled-elsewhere" {
                    // Hosts 2 and 3 share the rest between them the same way.
                    let holder = account["handledBy"] as? String ?? "none"
                    #expect(holder != "host-\(host)" && holder.hasPrefix("host-"), "\(account)")
                    if holder == "host-1" { leftToHost1.insert(account["name"] as? String ?? "") }
                }
            }
            return try fleet.keyrings(atGeneration: 3) == Self.accountCount
        }
        print("postgres fleet: accounts left to the killed host-1 while its leases ran: \(leftToHost1.sorted().joined(separator: ", "))")
        #expect(!leftToHost1.isEmpty && leftToHost1.isSubset(of: Set(held)), "left to host-1: \(leftToHost1.sorted()), held: \(held)")
        let finished = ContinuousClock.now - killed
        print("postgres fleet: every account rebound \(finished) after the kill (lease time 5 s); unwraps \(fleet.unwraps) for 600 DEKs")
        #expect(finished < .seconds(25), "the killed daemon's accounts took \(finished) to be finished (lease time 5 s)")
        // 2 DEKs per account and 3 version proofs; at most the killed daemon's accounts in flight
        // (concurrency 4, 2 DEKs each) were unwrapped twice.
        #expect((603...611).contains(fleet.unwraps), "unwraps \(fleet.unwraps) for 600 DEKs (requests by answer: \(fleet.unwrapAnswers))")
        try await fleet.until("hosts 2 and 3 report every account bound to the third version", timeout: .seconds(20), asking: [2, 3]) {
            Self.allBound(fleet, to: third, hosts: [2, 3])
        }
    }
}
