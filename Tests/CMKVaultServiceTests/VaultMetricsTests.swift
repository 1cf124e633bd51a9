import CMKAzureTestServer
import CMKTesting
import Foundation
import Testing

/// `metrics.listen` on a real cmk-vault (docs/metrics.md, "The vault service"): a plain-HTTP
/// /metrics beside the HTTPS port that `promtool check metrics` accepts, whose documented series
/// move as tokens are issued and refused, keys are unwrapped and the security log is read; and the
/// configuration's refusals (exit 78 naming the key).
@Suite("cmk-vault's metrics", .serialized)
struct VaultMetricsTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test("a scrape passes promtool; token issues, a bad secret, an unknown client, the throttle, an unwrap and a security-log read move their series; no secret, token or raw path in it")
    func seriesMove() async throws {
        let metricsPort = try LoopbackPort.free()
        let vault = try VaultProcess.start(failuresPerClient: 3, extra: """
            vault: {master-key-file: master.key, create-master-key: true, retention-days: 7}
            metrics: {listen: '127.0.0.1:\(metricsPort)'}
            """)
        defer { vault.stop() }
        let scrape = { () throws -> PrometheusScrape in
            let scrape = try PrometheusScrape.fetch(port: metricsPort)
            try scrape.check()
            return scrape
        }
        let first = try scrape()
        for reason in ["unknown-client", "bad-secret", "revoked", "expired", "not-yet-valid", "throttled", "not-recorded"] {
            #expect(first.value("cmk_vault_token_failures_total", ["reason": reason]) == 0, "\(reason)")
        }
        #expect(first.value("cmk_vault_tokens_issued_total", ["role": "platform"]) == 0)
        #expect((first.value("process_resident_memory_bytes") ?? 0) > 0)
        let recordsBefore = try #require(first.value("cmk_vault_security_log_records"))

        let platform = try vault.ctl(["identities", "add", "host-1.example", "--json"])
        let platformID = try #require(platform["clientId"] as? String), platformSecret = try #require(platform["secret"] as? String)
        let admin = try vault.ctl(["admins", "add", "Metrics Admin", "--json"])
        let adminID = try #require(admin["clientId"] as? String), adminSecret = try #require(admin["secret"] as? String)
        var secrets = [platformSecret, adminSecret]
        try await VaultHTTPS.with(vault) { https in
            let adminToken = try await https.token(clientID: adminID, secret: adminSecret)
            let platformToken = try await https.token(clientID: platformID, secret: platformSecret)
            let spToken = try await https.servicePrincipalToken()
            secrets += [adminToken, platformToken, spToken]

            // A key, a wrap and an unwrap by the host's identity.
            let created = try await https.send(.POST, "/keys/metrics-key/create", json: ["kty": "RSA", "key_size": 2048], token: spToken)
            try #require(created.status == 200, "\(String(decoding: created.body, as: UTF8.self))")
            let kid = try #require((VaultHTTPS.json(created)["key"] as? [String: Any])?["kid"] as? String)
            let version = try #require(kid.split(separator: "/").last.map(String.init))
            let dek = Data((0..<32).map { UInt8($0) }).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            let wrapped = try await https.send(.POST, "/keys/metrics-key/\(version)/wrapkey", json: ["alg": "RSA-OAEP-256", "value": dek], token: platformToken)
            try #require(wrapped.status == 200, "\(String(decoding: wrapped.body, as: UTF8.self))")
            let value = try #require(VaultHTTPS.json(wrapped)["value"] as? String)
            let unwrapped = try await https.send(.POST, "/keys/metrics-key/\(version)/unwrapkey", json: ["alg": "RSA-OAEP-256", "value": value], token: platformToken)
            #expect(unwrapped.status == 200)
            #expect(VaultHTTPS.json(unwrapped)["value"] as? String == dek)
            // The platform identity may not create keys: a refused key operation.
            #expect(try await https.send(.POST, "/keys/other-key/create", json: ["kty": "RSA"], token: platformToken).status == 403)

            // A security-log read, and a path no route matches.
            #expect(try await https.send(.GET, "/v1.0/securityLogs/records", query: nil, token: adminToken).status == 200)
            #expect(try await https.send(.GET, "/no-such-route/\(UUID().uuidString)", query: nil).status == 404)
            // The HTTPS port does not serve the metrics.
            #expect(try await https.send(.GET, "/metrics", query: nil).status == 404)

            // Refusals: an unknown client, then bad secrets until the throttle (3 per client) refuses.
            await #expect(throws: (any Error).self) { try await https.token(clientID: UUID().uuidString.lowercased(), secret: "not-a-secret") }
            for _ in 0..<4 {
                await #expect(throws: (any Error).self) { try await https.token(clientID: platformID, secret: "wrong-secret-value") }
            }
        }

        let after = try scrape()
        #expect(after.value("cmk_vault_tokens_issued_total", ["role": "administrator"]) == 2, "two admin tokens (one by servicePrincipalToken)")
        #expect(after.value("cmk_vault_tokens_issued_total", ["role": "platform"]) == 1)
        #expect(after.value("cmk_vault_tokens_issued_total", ["role": "service-principal"]) == 1)
        #expect(after.value("cmk_vault_token_failures_total", ["reason": "unknown-client"]) == 1)
        #expect(after.value("cmk_vault_token_failures_total", ["reason": "bad-secret"]) == 3)
        #expect(after.value("cmk_vault_token_failures_total", ["reason": "throttled"]) == 1)
        #expect(after.value("cmk_vault_throttle_refusals_total", ["endpoint": "token"]) == 1)
        #expect(after.value("cmk_vault_throttle_refusals_total", ["endpoint": "bearer"]) == 0)
        let platformLabels = ["client_id": platformID, "role": "platform"]
        #expect(after.value("cmk_vault_key_operations_total", platformLabels.merging(["operation": "unwrapkey", "outcome": "ok"]) { $1 }) == 1)
        #expect(after.value("cmk_vault_key_operations_total", platformLabels.merging(["operation": "wrapkey", "outcome": "ok"]) { $1 }) == 1)
        #expect(after.value("cmk_vault_key_operations_total", platformLabels.merging(["operation": "create", "outcome": "refused"]) { $1 }) == 1)
        #expect(after.sum("cmk_vault_key_operations_total", matching: ["operation": "create", "role": "service-principal", "outcome": "ok"]) == 1)
        let routes = Set(after.samples.filter { $0.name == "cmk_vault_http_requests_total" }.map { "\($0.labels["route"] ?? "") \($0.labels["code"] ?? "")" }).sorted()
        #expect(after.sum("cmk_vault_http_requests_total", matching: ["route": "/v1.0/securityLogs/records", "method": "GET", "code": "200"]) == 1, "\(routes)")
        #expect(after.sum("cmk_vault_http_requests_total", matching: ["route": "/{tenant}/oauth2/v2.0/token", "code": "200"]) >= 3, "\(routes)")
        #expect(after.sum("cmk_vault_http_requests_total", matching: ["route": "unmatched", "code": "404"]) >= 1, "\(routes)")
        #expect(after.sum("cmk_vault_http_request_duration_seconds_count", matching: ["route": "/keys/**"]) >= 4)
        #expect(try #require(after.value("cmk_vault_security_log_records")) >= recordsBefore + 8, "token issues, failures and key uses are records")
        #expect((after.value("cmk_vault_security_log_bytes") ?? 0) > 4096)

        // Nothing secret and no raw path; every family documented with its type.
        for secret in secrets { #expect(!after.text.contains(secret), "a secret or token is in the exposition") }
        #expect(!after.text.contains("metrics-key") && !after.text.contains("no-such-route"), "a raw path is a label value")
        let docs = try String(contentsOfFile: Self.packageRoot + "/docs/metrics.md", encoding: .utf8)
        for family in after.text.split(separator: "\n").filter({ $0.hasPrefix("# TYPE ") }).map({ $0.split(separator: " ") }) {
            #expect(docs.contains("| `\(family[2])` | \(family[3]) |"), "docs/metrics.md has no row for \(family[2]) (\(family[3]))")
        }
        #expect(vault.terminate() == 0)
    }

    @Test("metrics.listen refusals: a network address, a missing listen, an unknown key: check-config and run exit 78 naming the key")
    func refusals() throws {
        let root = NSTemporaryDirectory() + "cmk-vault-metrics-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cases: [(String, String)] = [
            ("metrics: {listen: '0.0.0.0:9464'}", "metrics.listen: '0.0.0.0:9464' is not a loopback address or unix socket"),
            ("metrics: {listen: '127.0.0.1:0'}", "metrics.listen: '127.0.0.1:0' has no port from 1 to 65535"),
            ("metrics: {}", "metrics.listen"),
            ("metrics: {listen: 'unix:/run/x.sock', mode: 0600}", "metrics.mode"),
        ]
        for (section, expected) in cases {
            let config = root + "/cmk-vault.yaml"
            try """
                state-directory: \(root)/state
                public-url: https://127.0.0.1:8443
                listen: 127.0.0.1:8443
                tls: {certificate-file: \(root)/tls.crt, key-file: \(root)/tls.key}
                \(section)
                """.write(toFile: config, atomically: true, encoding: .utf8)
            for command in ["check-config", "run"] {
                let result = try ProcessRunner.run(try VaultProcess.binary("cmk-vault"), [command, "--config", config])
                let errors = result.errors
                #expect(result.status == 78, "\(command) with \(section): exit \(result.status): \(errors)")
                #expect(errors.contains(expected), "\(command) with \(section): \(errors)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: root + "/state"), "run started something")
    }
}
