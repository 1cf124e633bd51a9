import AsyncHTTPClient
import CMKAzureTestServer
import CMKTesting
import CMKTestingHTTP
import Foundation
import Glibc
import NIOCore
import NIOSSL

/// Suite 8: Azure Key Vault's keys API served by a real `cmk-vault` (issue 16). Unwraps per second
/// over loopback TLS as a host's platform identity (RSA-OAEP-256, 2048 bits), against the local
/// vault's unwrap in-process and `openssl speed rsa2048` in the same run; then a rotation of
/// `fleetAccounts` accounts spread over three `cmk-syncer` processes on the service through their
/// Azure provider, with the service's limit at 2,000 key operations per 10 s: the time against
/// unwraps ÷ budget, failures, and the service's unwrap records against the number of DEKs.
enum KeysAPIBench {
    static let key = "data-at-rest-rsa2048"

    static func run(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        try await unwraps(plan, scratch: scratch + "/keys-unwrap", into: &results)
        try await fleetRotation(plan, scratch: scratch + "/keys-fleet", into: &results)
    }

    // MARK: Unwraps over loopback TLS

    static func unwraps(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        let service = try await KeysService.start(root: scratch, keyOperationsPer10s: 0, concurrency: plan.keysConcurrency.max() ?? 16)
        do {
            let principal = try await service.servicePrincipalToken()
            let version = try await service.createKey(token: principal)
            let platform = try service.ctl(["identities", "add", "bench-host.example", "--json"])
            let token = try await service.token(clientID: platform["clientId"] as? String ?? "", secret: platform["secret"] as? String ?? "")
            let dek = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
            let wrapped = try await service.call("POST", "/keys/\(key)/\(version)/wrapkey", json: ["alg": "RSA-OAEP-256", "value": base64url(dek)], token: token)
            let ciphertext = wrapped["value"] as? String ?? ""
            let check = try await service.call("POST", "/keys/\(key)/\(version)/unwrapkey", json: ["alg": "RSA-OAEP-256", "value": ciphertext], token: token)
            guard check["value"] as? String == base64url(dek) else {
                throw OpenSSLAnchor.Failure(description: "cmk-vault's unwrap did not return the DEK it wrapped")
            }
            let body = try JSONSerialization.data(withJSONObject: ["alg": "RSA-OAEP-256", "value": ciphertext])
            let url = "\(service.url)/keys/\(key)/\(version)/unwrapkey?api-version=7.6"
            let local = try await CryptoBench.localUnwraps(seconds: plan.cryptoSeconds, scratch: scratch).perCPUSecond
            let anchor = try OpenSSLAnchor.rsa2048(seconds: plan.opensslSeconds)
            for concurrency in plan.keysConcurrency {
                let cpu0 = Measure.cpuSeconds(pid: service.process.processIdentifier) ?? 0
                let started = Measure.wall()
                let figure = try await VaultBench.load(service.client, seconds: plan.vaultHTTPSeconds, concurrency: concurrency) {
                    var request = HTTPClientRequest(url: url)
                    request.method = .POST
                    request.headers.add(name: "Authorization", value: "Bearer \(token)")
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(data: body))
                    return request
                }
                let serviceCPU = (Measure.cpuSeconds(pid: service.process.processIdentifier) ?? 0) - cpu0
                let wall = Measure.wall() - started
                results.add(Figure(suite: "keys", name: "unwrapkey through cmk-vault (HTTPS loopback, RSA-OAEP-256 2048), \(concurrency) concurrent",
                                   value: figure.perSecond, unit: "op/s", anchor: anchor.privatePerSecond, anchorName: "openssl rsa2048 private ops",
                                   target: nil, detail: [
                                       "p50 s": figure.latency.p50, "p99 s": figure.latency.p99, "requests": Double(figure.latency.count),
                                       "local vault in-process op/s": local, "service CPU %": 100 * serviceCPU / wall,
                                   ]))
            }
            results.add(Figure(suite: "keys", name: "local vault unwraps in-process (the service's own operation)", value: local, unit: "op/s",
                               anchor: anchor.privatePerSecond, anchorName: "openssl rsa2048 private ops", target: nil))
            results.notes.append("keys: cmk-vault is a separate process; client and service share the machine's \(ProcessInfo.processInfo.activeProcessorCount) cores; every unwrap is a security-log record (group commit)")
        } catch {
            await service.stop()
            throw error
        }
        await service.stop()
    }

    // MARK: A rotation across three daemons under the service's limit

    static func fleetRotation(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        let accounts = plan.fleetAccounts, budget = 2_000, hosts = 3
        // Setting up (creating and binding every account) runs without the limit; the rotation under it.
        var service = try await KeysService.start(root: scratch, keyOperationsPer10s: 0, concurrency: 4)
        do {
            let principal = try await service.servicePrincipalToken()
            let first = try await service.createKey(token: principal)
            var daemons: [FleetHost] = []
            for index in 0..<hosts {
                let identity = try service.ctl(["identities", "add", "host-\(index + 1).example", "--json"])
                let share = accounts / hosts + (index < accounts % hosts ? 1 : 0)
                daemons.append(try FleetHost(root: "\(scratch)/host-\(index + 1)", index: index, accounts: share, service: service,
                                             clientID: identity["clientId"] as? String ?? "", secret: identity["secret"] as? String ?? "",
                                             perHostBudget: budget / hosts))
            }
            try await FleetHost.runAll(daemons, expecting: first)
            service = try await service.restart(keyOperationsPer10s: budget)
            let adminToken = try await service.adminToken()
            let before = try await service.records(operation: "key-unwrapkey", token: adminToken)
            let principalAgain = try await service.servicePrincipalToken()
            let second = try await service.createKey(token: principalAgain)
            let started = Measure.wall()
            try await FleetHost.runAll(daemons, expecting: nil)
            let seconds = Measure.wall() - started
            var failures = 0, rebound = 0
            for daemon in daemons {
                let bindings = try daemon.bindings()
                rebound += bindings.filter { $0 == second }.count
                failures += daemon.accounts - bindings.filter { $0 == second }.count
            }
            // Each account's DEK is unwrapped under the old version; the new version's unwraps are
            // the daemons' probes (DEKResolver.verify: a random DEK wrapped and unwrapped once per version).
            let during = try await service.records(operation: "key-unwrapkey", from: before.next, token: adminToken).byVersion
            let unwraps = during[first, default: 0], probes = during[second, default: 0]
            let others = during.values.reduce(0, +) - unwraps - probes
            let expected = Double(accounts) / (Double(budget) / 10)
            let label = "\(accounts.formatted()) accounts on 3 daemons, limit \(budget.formatted())/10 s"
            results.add(Figure(suite: "keys", name: "rotation through cmk-vault, \(label)", value: seconds, unit: "s",
                               anchor: expected, anchorName: "unwraps ÷ budget", detail: [
                                   "accounts": Double(accounts), "rebound": Double(rebound), "service unwraps (old version)": Double(unwraps),
                                   "service unwraps (new version: probes)": Double(probes), "service unwraps (other versions)": Double(others),
                                   "per-host client budget per 10 s": Double(budget / hosts),
                               ]))
            results.add(Figure(suite: "keys", name: "rotation failures, \(label)", value: Double(failures), unit: "", exactly: 0))
            results.add(Figure(suite: "keys", name: "service unwraps of the old version − DEKs (no account rebound twice), \(label)",
                               value: Double(unwraps + others - accounts), unit: "", exactly: 0,
                               detail: ["unwraps": Double(unwraps), "other versions": Double(others), "DEKs": Double(accounts)]))
            results.add(Figure(suite: "keys", name: "probe unwraps of the new version (DEKResolver.verify), \(label)", value: Double(probes),
                               unit: "", detail: ["daemons": Double(hosts), "sync.concurrency": 16]))
        } catch {
            await service.stop()
            throw error
        }
        await service.stop()
    }

    static func base64url(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

/// One host: a `cmk-syncer` configuration on the service through the Azure provider with its
/// platform identity, `accounts` directory accounts, and a client-side budget of `perHostBudget`
/// requests per 10 s (its share of the service's).
struct FleetHost: Sendable {
    let root: String
    let config: String
    let accounts: Int

    init(root: String, index: Int, accounts: Int, service: KeysService, clientID: String, secret: String, perHostBudget: Int) throws {
        self.root = root
        self.accounts = accounts
        config = root + "/cmk-syncer.yaml"
        try FileManager.default.createDirectory(atPath: root + "/accounts", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let vault = AzureProviderSection(vaultService: service.url, tenantID: service.tenant, clientID: clientID, caFile: service.ca.caCertificatePath,
                                         key: KeysAPIBench.key, clientSecretFile: root + "/platform.secret",
                                         extra: ["rate-limit: {operations: \(perHostBudget), period: 10s}"])
        try vault.writeSecret(secret)
        let kinds = ["file", "sql", "audit", "analytics", "secret-store"]
        var yaml = """
            state-directory: \(root)/state
            \(vault.yaml)
            sync: {concurrency: 16, start-timeout: 30m}
            logging: {level: warning}
            accounts:

            """
        for account in 0..<accounts {
            yaml += "  - {name: h\(index)-\(account), kind: \(kinds[account % kinds.count]), driver: directory, location: \(root)/accounts/a\(account), create: true}\n"
        }
        try yaml.write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// `cmk-syncer run --once` on every host at the same time; each must exit 0.
    static func runAll(_ hosts: [FleetHost], expecting version: String?) async throws {
        try await runOnce(hosts.map { ($0.root, $0.config) })
        if let version {
            for host in hosts {
                let bindings = try host.bindings()
                guard bindings.count == host.accounts, bindings.allSatisfy({ $0 == version }) else {
                    throw OpenSSLAnchor.Failure(description: "\(host.root): \(bindings.filter { $0 == version }.count) of \(host.accounts) accounts bound to \(version)")
                }
            }
        }
    }

    /// `cmk-syncer run --once --config CONFIG` for every (root, config) at the same time, each
    /// logging to ROOT/run.log; each must exit 0.
    static func runOnce(_ runs: [(root: String, config: String)]) async throws {
        let binary = try DaemonBench.sibling("cmk-syncer")
        var running: [(String, Process)] = []
        for (root, config) in runs {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["run", "--once", "--config", config]
            var environment = ProcessInfo.processInfo.environment
            for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS", "JOURNAL_STREAM"] { environment[name] = nil }
            process.environment = environment
            _ = FileManager.default.createFile(atPath: root + "/run.log", contents: nil)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/run.log"))
            process.standardOutput = log
            process.standardError = log
            try process.run()
            running.append((root, process))
        }
        while running.contains(where: { $0.1.isRunning }) { try await Task.sleep(for: .milliseconds(20)) }
        for (root, process) in running where process.terminationStatus != 0 {
            let log = (try? String(contentsOfFile: root + "/run.log", encoding: .utf8)) ?? ""
            throw OpenSSLAnchor.Failure(description: "cmk-syncer run --once for \(root) exited \(process.terminationStatus): \(log.suffix(2000))")
        }
    }

    /// Each account's binding from the last report (`cmkctl status --report-only --json`).
    func bindings() throws -> [String] {
        let status = try ProcessRunner.run(try DaemonBench.sibling("cmkctl"), ["status", "--report-only", "--json", "--config", config])
        guard let document = try? JSONSerialization.jsonObject(with: status.output) as? [String: Any],
              let report = document["report"] as? [String: Any], let list = report["accounts"] as? [[String: Any]] else {
            throw OpenSSLAnchor.Failure(description: "cmkctl status for \(root) printed no report: \(status.errors.suffix(500))")
        }
        return list.map { $0["binding"] as? String ?? "" }
    }
}

/// A `cmk-vault` process with a vault, on a loopback port with a throw-away CA, and an HTTPS
/// client that trusts it (the tests' ``TestHTTPSClient``).
final class KeysService: @unchecked Sendable {
    let root: String
    let port: Int
    let ca: TestCertificateAuthority
    let process: Process
    let https: TestHTTPSClient
    var client: HTTPClient { https.http }
    let tenant: String
    var url: String { "https://127.0.0.1:\(port)" }
    var state: String { root + "/state" }
    var log: String { (try? String(contentsOfFile: root + "/vault.log", encoding: .utf8)) ?? "" }

    private init(root: String, port: Int, ca: TestCertificateAuthority, process: Process, https: TestHTTPSClient, tenant: String) {
        self.root = root
        self.port = port
        self.ca = ca
        self.process = process
        self.https = https
        self.tenant = tenant
    }

    static func start(root: String, keyOperationsPer10s: Int, concurrency: Int, ca existing: TestCertificateAuthority? = nil,
                      port existingPort: Int? = nil) async throws -> KeysService {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let ca = try existing ?? TestCertificateAuthority.make()
        let port = try existingPort ?? LoopbackPort.free()
        let config = root + "/cmk-vault.yaml"
        try """
            state-directory: \(root)/state
            public-url: https://127.0.0.1:\(port)
            listen: 127.0.0.1:\(port)
            tls: {certificate-file: \(ca.server.certificatePath), key-file: \(ca.server.privateKeyPath)}
            vault: {master-key-file: master.key, create-master-key: true, retention-days: 7}
            limits: {key-operations-per-10s: \(keyOperationsPer10s)}
            logging: {format: text, level: info}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        chmod(config, 0o600)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try DaemonBench.sibling("cmk-vault"))
        process.arguments = ["run", "--config", config]
        var environment = ProcessInfo.processInfo.environment
        for name in ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY"] { environment[name] = nil }
        process.environment = environment
        let logPath = root + "/vault.log"
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try handle.seekToEnd()
        process.standardOutput = handle
        process.standardError = handle
        let before = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").components(separatedBy: "The vault service is listening.").count
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        var text = ""
        while Date() < deadline, process.isRunning {
            text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if text.components(separatedBy: "The vault service is listening.").count > before { break }
            usleep(50_000)
        }
        guard text.components(separatedBy: "The vault service is listening.").count > before, let range = text.range(of: "cmk_tenant=") else {
            if process.isRunning { process.terminate() }
            throw OpenSSLAnchor.Failure(description: "cmk-vault did not start listening; log:\n\(text.suffix(2000))")
        }
        let https = TestHTTPSClient(baseURL: "https://127.0.0.1:\(port)", caFile: ca.caCertificatePath) { configuration in
            configuration.httpVersion = .http1Only
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = concurrency
        }
        return KeysService(root: root, port: port, ca: ca, process: process, https: https, tenant: String(text[range.upperBound...].prefix(36)))
    }

    /// Stops the service (SIGTERM) and starts it again on the same state, port and CA with another limit.
    func restart(keyOperationsPer10s: Int) async throws -> KeysService {
        try? await https.shutdown()
        terminate()
        return try await Self.start(root: root, keyOperationsPer10s: keyOperationsPer10s, concurrency: 4, ca: ca, port: port)
    }

    private func terminate() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(15)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    func stop() async {
        try? await https.shutdown()
        terminate()
        ca.remove()
    }

    /// `cmkctl ARGS --vault-state STATE` (exit 0); its JSON object.
    func ctl(_ arguments: [String]) throws -> [String: Any] {
        let run = try ProcessRunner.run(try DaemonBench.sibling("cmkctl"), arguments + ["--vault-state", state])
        guard run.status == 0, let object = try? JSONSerialization.jsonObject(with: run.output) as? [String: Any] else {
            throw OpenSSLAnchor.Failure(description: "cmkctl \(arguments.joined(separator: " ")) exited \(run.status): \(run.errors.suffix(500))")
        }
        return object
    }

    /// A request that must be answered 2xx; its JSON object.
    func call(_ method: String, _ path: String, query: String? = "api-version=7.6", json: Any? = nil, form: String? = nil, token: String? = nil) async throws -> [String: Any] {
        let reply = try await https.send(.init(rawValue: method), path, query: query, json: json, form: form, token: token, timeout: .seconds(120), limit: 1 << 24)
        guard (200..<300).contains(reply.status) else {
            throw OpenSSLAnchor.Failure(description: "\(method) \(path) answered \(reply.status): \(String(decoding: reply.body, as: UTF8.self).prefix(300))")
        }
        return TestHTTPSClient.json(reply)
    }

    func token(clientID: String, secret: String) async throws -> String {
        try await https.token(tenant: tenant, clientID: clientID, secret: secret)
    }

    private var adminCredential: (String, String)?

    func adminToken() async throws -> String {
        if adminCredential == nil {
            let admin = try ctl(["admins", "add", "Bench Admin \(UUID().uuidString.prefix(8))", "--json"])
            adminCredential = (admin["clientId"] as? String ?? "", admin["secret"] as? String ?? "")
        }
        return try await token(clientID: adminCredential!.0, secret: adminCredential!.1)
    }

    /// A token of the customer's service principal (a new key through Graph's addPassword).
    func servicePrincipalToken() async throws -> String {
        try await https.servicePrincipalToken(tenant: tenant, adminToken: try await adminToken(), displayName: "bench \(UUID().uuidString.prefix(8))")
    }

    /// Creates the key (or its next version) as the service principal; the new version.
    func createKey(token: String) async throws -> String {
        let bundle = try await call("POST", "/keys/\(KeysAPIBench.key)/create", json: ["kty": "RSA-HSM", "key_size": 2048], token: token)
        guard let kid = (bundle["key"] as? [String: Any])?["kid"] as? String, let version = kid.split(separator: "/").last else {
            throw OpenSSLAnchor.Failure(description: "create answered no kid")
        }
        return String(version)
    }

    /// The security log's records of `operation` from index `start` on (Security Logs API, every
    /// page), counted by the key version they name; and the next index.
    func records(operation: String, from start: Int = 0, token: String) async throws -> (byVersion: [String: Int], next: Int) {
        var counts: [String: Int] = [:], next = start
        var link: String? = "\(url)/v1.0/securityLogs/records?operation=\(operation)\(start > 0 ? "&$skiptoken=\(start)" : "")"
        while let page = link {
            let answer = try await call("GET", page, query: nil, token: token)
            for item in answer["value"] as? [[String: Any]] ?? [] {
                let details = (item["record"] as? [String: Any])?["details"] as? [String: Any]
                counts[details?["version"] as? String ?? "", default: 0] += 1
                next = max(next, (item["index"] as? Int ?? 0) + 1)
            }
            link = answer["@odata.nextLink"] as? String
        }
        return (counts, next)
    }
}
