import CMKAzureTestServer
import Foundation
import NIOHTTP1
import Testing

/// cmk-vault's keys API held to real Azure traffic and to Azure's service limit: the recordings
/// of the Azure SDK test suites replayed against a real cmk-vault (the same replayer and the
/// same list of unsupported operations as the emulator's replay), and
/// `limits.key-operations-per-10s` answering as Azure throttles.
@Suite("cmk-vault keys API: recorded Azure traffic and the rate limit", .serialized)
struct KeysAPIReplayAndLimitTests {
    /// What cmk-vault does not send as Azure does (docs/vault-service.md, "Recorded Azure traffic"):
    /// Azure's diagnostic headers (request id, the echoed client request id, region, network
    /// info, service version), the legacy Pragma/Expires, HSTS without includeSubDomains (the
    /// service names no subdomains) and `Cache-Control: no-store` on a 401. Content-Type and the
    /// challenge are compared.
    static let headersNotSent: Set<String> = [
        "x-ms-request-id", "x-ms-client-request-id", "x-ms-keyvault-region", "x-ms-keyvault-network-info", "x-ms-keyvault-service-version",
        "pragma", "expires", "strict-transport-security", "cache-control",
    ]

    @Test("every supported recorded exchange gets the recorded status, shape and values from cmk-vault, as the service principal")
    func replayAgainstTheService() async throws {
        let totals = try await RecordingReplay.replayAll { _, replay in
            // A fresh service per recording, as the recordings ran against fresh keys (7-day retention, purgeable).
            let vault = try VaultProcess.start(
                extra: "vault: {master-key-file: master.key, create-master-key: true, retention-days: 7, purge-protection: false}")
            defer { vault.stop() }
            return try await VaultHTTPS.with(vault) { https in
                let target = RecordingReplay.Target(vaultURL: vault.url, challengeResource: vault.url,
                                                    headersNotCompared: Self.headersNotSent) { request in
                    try await https.send(HTTPMethod(rawValue: request.method), request.url, query: request.query, json: request.json,
                                         token: request.token, headers: request.headers)
                }
                return try await replay(target, try await https.servicePrincipalToken())
            }
        }
        for mismatch in totals.mismatches { Issue.record("\(mismatch)") }
        print(totals.summary("cmk-vault"))
        guard RecordingReplay.isSharedDirectory else { return }
        #expect(totals.compared >= 55, "only \(totals.compared) exchanges compared")
        #expect(totals.kinds.isSuperset(of: RecordingReplay.requiredKinds), "compared kinds: \(totals.kinds.sorted())")
    }

    @Test("limits.key-operations-per-10s: the next keys API request gets Azure's 429 Throttled with Retry-After, other routes do not count, and a client that waits is served")
    func rateLimit() async throws {
        let vault = try VaultProcess.start(
            extra: "vault: {master-key-file: master.key, create-master-key: true, retention-days: 7}\nlimits: {key-operations-per-10s: 3}")
        defer { vault.stop() }
        let platform = try vault.ctl(["identities", "add", "host-1.example", "--json"])
        try await VaultHTTPS.with(vault) { https in
            let token = try await https.token(clientID: try #require(platform["clientId"] as? String), secret: try #require(platform["secret"] as? String))
            let start = ContinuousClock.now
            for _ in 0..<3 { #expect(try await https.send(.GET, "/keys/data-at-rest-rsa2048/", token: token).status == 404) }
            // The token endpoint and the discovery document are not key operations.
            _ = try await https.token(clientID: try #require(platform["clientId"] as? String), secret: try #require(platform["secret"] as? String))
            let throttled = try await https.send(.GET, "/keys/data-at-rest-rsa2048/", token: token)
            try #require(ContinuousClock.now - start < .seconds(9), "the machine is too slow for a 10 s window")
            #expect(throttled.status == 429, "\(String(decoding: throttled.body, as: UTF8.self))")
            let error = VaultHTTPS.json(throttled)["error"] as? [String: Any]
            #expect(error?["code"] as? String == "Throttled")
            #expect((error?["message"] as? String)?.contains("VaultRequestTypeLimitReached") == true)
            let retryAfter = try #require(Int(throttled.header("Retry-After") ?? ""), "no Retry-After")
            #expect((1...10).contains(retryAfter))
            // A refused request is not answered early: a challenge-less request is still a 401 first.
            #expect(try await https.send(.GET, "/keys/data-at-rest-rsa2048/").status == 401)
            try await Task.sleep(for: .seconds(retryAfter))
            #expect(try await https.send(.GET, "/keys/data-at-rest-rsa2048/", token: token).status == 404)
        }
    }

    @Test("limits.key-operations-per-10s: 0 turns the limit off")
    func rateLimitOff() async throws {
        let vault = try VaultProcess.start(
            extra: "vault: {master-key-file: master.key, create-master-key: true, retention-days: 7}\nlimits: {key-operations-per-10s: 0}")
        defer { vault.stop() }
        let platform = try vault.ctl(["identities", "add", "host-1.example", "--json"])
        try await VaultHTTPS.with(vault) { https in
            let token = try await https.token(clientID: try #require(platform["clientId"] as? String), secret: try #require(platform["secret"] as? String))
            for _ in 0..<25 { #expect(try await https.send(.GET, "/keys/data-at-rest-rsa2048/", token: token).status == 404) }
        }
    }
}
