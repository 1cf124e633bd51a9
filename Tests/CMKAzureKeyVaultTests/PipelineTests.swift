@testable import CMKAzureKeyVault
import CMKCore
import Foundation
import Testing

/// Error mapping, retries, the request budget and the 401 challenge, on scripted answers.
@Suite("Azure Key Vault pipeline")
struct PipelineTests {
    let key = try! KeyReference("data-at-rest-rsa2048")
    let version = "0123456789abcdef0123456789abcdef"

    static func bundle(_ version: String, created: Int = 1_778_515_984, enabled: Bool = true, exp: Int? = nil) -> String {
        let expiry = exp.map { #","exp":\#($0)"# } ?? ""
        return #"{"key":{"kid":"https://sanitized.vault.azure.net/keys/data-at-rest-rsa2048/\#(version)","kty":"RSA","n":"AQAB","e":"AQAB"},"attributes":{"enabled":\#(enabled),"created":\#(created),"updated":\#(created)\#(expiry)}}"#
    }

    static func item(_ version: String, created: Int, enabled: Bool = true) -> String {
        #"{"kid":"https://sanitized.vault.azure.net/keys/data-at-rest-rsa2048/\#(version)","attributes":{"enabled":\#(enabled),"created":\#(created),"updated":\#(created)}}"#
    }

    static func error(_ status: Int, _ code: String, _ message: String, headers: [(name: String, value: String)] = []) -> AzureHTTPResponse {
        .json(status, #"{"error":{"code":"\#(code)","message":"\#(message)"}}"#, headers: headers)
    }

    func expectError(_ code: VaultError.Code, sourceLocation: SourceLocation = #_sourceLocation,
                     _ body: () async throws -> Void) async -> VaultError? {
        await expectVaultError(code, sourceLocation: sourceLocation, body)
    }

    @Test("a snapshot costs two requests and orders versions oldest first, the latest last")
    func snapshotBudget() async throws {
        let transport = ScriptedTransport()
        let older = "00000000000000000000000000000001", newer = "ffffffffffffffffffffffffffffffff"
        transport.enqueue("get-key", .json(200, Self.bundle(older, created: 200)))
        transport.enqueue("list-versions", .json(200, #"{"value":[\#(Self.item(newer, created: 200)),\#(Self.item(older, created: 200)),\#(Self.item("0a", created: 100, enabled: false))],"nextLink":null}"#))
        let vault = try Fixtures.vault(transport)
        guard case .present(let state) = try await vault.snapshot(of: key) else { Issue.record("not present"); return }
        #expect(state.versions.map(\.id) == ["0a", newer, older], "same-second versions: the one the service calls latest is current")
        #expect(state.current?.id == older)
        #expect(state.version("0a")?.enabled == false)
        #expect(vault.requestCounts == ["get-key": 1, "list-versions": 1])
        #expect(transport.requests.allSatisfy { $0.url.query?.hasPrefix("api-version=7.6") == true })
        #expect(transport.requests[1].url.query == "api-version=7.6&maxresults=25")
    }

    @Test("api-version 2025-07-01 is the default and goes on every request")
    func defaultAPIVersion() async throws {
        let transport = ScriptedTransport()
        transport.enqueue("get-key", Self.error(404, "KeyNotFound", "A key with (name/id) x was not found"))
        transport.enqueue("get-deleted-key", Self.error(404, "KeyNotFound", "Deleted Key not found: x"))
        var configuration = Fixtures.configuration(secretFile: try Fixtures.secretFile())
        configuration.apiVersion = AzureKeyVaultConfiguration.defaultAPIVersion
        let vault = try AzureKeyVault(configuration: configuration, transport: transport, runtime: ManualRuntime().runtime)
        #expect(try await vault.snapshot(of: key) == .missing(key))
        #expect(transport.requests.map { $0.url.query } == ["api-version=2025-07-01", "api-version=2025-07-01"])
    }

    @Test("the current version disabled: get is refused with 403 but the snapshot still lists it")
    func disabledCurrentVersion() async throws {
        let transport = ScriptedTransport()
        transport.enqueue("get-key", Self.error(403, "Forbidden", "Operation get is not allowed on a disabled key."))
        transport.enqueue("list-versions", .json(200, #"{"value":[\#(Self.item("02", created: 20, enabled: false)),\#(Self.item("01", created: 10))]}"#))
        guard case .present(let state) = try await Fixtures.vault(transport).snapshot(of: key) else { Issue.record("not present"); return }
        #expect(state.current?.id == "02" && state.current?.enabled == false)
        #expect(state.newestWrappable(at: Date(timeIntervalSince1970: 100))?.id == "01")
    }

    @Test("403 means disabled, access denied or purge protection, each its own error")
    func forbiddenKinds() async throws {
        let transport = ScriptedTransport()
        transport.enqueue("unwrap", Self.error(403, "Forbidden", "Operation unwrapKey is not allowed on a disabled key."))
        transport.enqueue("unwrap", Self.error(403, "Forbidden", "Caller is not authorized to perform action on resource.", headers: []))
        transport.enqueue("unwrap", .json(403, #"{"error":{"code":"Forbidden","message":"Caller is not authorized","innererror":{"code":"ForbiddenByRbac"}}}"#))
        transport.enqueue("purge-key", Self.error(403, "Forbidden", "Operation \\\"purge\\\" is not allowed because purge protection is enabled for this vault."))
        transport.enqueue("get-key", Self.error(403, "ForbiddenByFirewall", "Client address is not authorized and caller is not a trusted service."))
        let vault = try Fixtures.vault(transport)
        let wrapped = Data(repeating: 1, count: 256)
        _ = await expectError(.disabled) { _ = try await vault.unwrap(wrapped, key: key, version: version, algorithm: .rsaOAEP256) }
        let denied = await expectError(.forbidden) { _ = try await vault.unwrap(wrapped, key: key, version: version, algorithm: .rsaOAEP256) }
        #expect(denied?.reason.contains("permission") == true)
        let rbac = await expectError(.forbidden) { _ = try await vault.unwrap(wrapped, key: key, version: version, algorithm: .rsaOAEP256) }
        #expect(rbac?.reason.contains("ForbiddenByRbac") == true)
        _ = await expectError(.conflict) { try await vault.purgeKey(key) }
        let firewall = await expectError(.forbidden) { _ = try await vault.snapshot(of: key) }
        #expect(firewall?.reason.contains("network rules") == true)
        #expect(vault.requestCounts["unwrap"] == 3, "403s are not retried")
    }

    @Test("unwrap after a 404 tells a deleted key from a missing key or version")
    func unwrapNotFound() async throws {
        let transport = ScriptedTransport()
        transport.enqueue("unwrap", Self.error(404, "KeyNotFound", "A key with (name/id) x was not found in this key vault."))
        transport.enqueue("get-deleted-key", .json(200, #"{"recoveryId":"https://sanitized.vault.azure.net/deletedkeys/data-at-rest-rsa2048","deletedDate":1778515985,"scheduledPurgeDate":1779120785,"key":{"kid":"https://sanitized.vault.azure.net/keys/data-at-rest-rsa2048/01","kty":"RSA"},"attributes":{"enabled":true,"created":1}}"#))
        transport.enqueue("unwrap", Self.error(404, "KeyNotFound", "A key with (name/id) x was not found in this key vault."))
        transport.enqueue("get-deleted-key", Self.error(404, "KeyNotFound", "Deleted Key not found: x"))
        transport.enqueue("unwrap", Self.error(400, "BadParameter", "The parameter is incorrect."))
        let vault = try Fixtures.vault(transport)
        let wrapped = Data(repeating: 1, count: 256)
        _ = await expectError(.deleted) { _ = try await vault.unwrap(wrapped, key: key, version: version, algorithm: .rsaOAEP256) }
        _ = await expectError(.notFound) { _ = try await vault.unwrap(wrapped, key: key, version: version, algorithm: .rsaOAEP256) }
        _ = await expectError(.invalidInput) { _ = try await vault.unwrap(wrapped, key: key, version: version, algorithm: .rsaOAEP256) }
        _ = await expectError(.unsupported) { _ = try await vault.unwrap(wrapped, key: key, version: version, algorithm: .aesKeyWrapPad) }
        _ = await expectError(.invalidInput) { _ = try await vault.unwrap(wrapped, key: key, version: "../../secrets", algorithm: .rsaOAEP256) }
    }

    @Test("429 with Retry-After waits exactly that long and retries")
    func throttledWithRetryAfter() async throws {
        let transport = ScriptedTransport(), clock = ManualRuntime()
        transport.enqueue("unwrap", Self.error(429, "Throttled", "Request was not processed because too many requests were received.", headers: [("Retry-After", "2")]))
        transport.enqueue("unwrap", .json(200, #"{"kid":"k","value":"AAEC"}"#))
        let vault = try Fixtures.vault(transport, runtime: clock)
        let plain = try await vault.unwrap(Data([1]), key: key, version: version, algorithm: .rsaOAEP256)
        #expect(plain == SecretBytes(copying: [0, 1, 2]))
        #expect(clock.sleeps == [.seconds(2)])
    }

    @Test("429 without Retry-After backs off exponentially with jitter, then reports throttled")
    func throttledWithoutRetryAfter() async throws {
        let transport = ScriptedTransport(), clock = ManualRuntime()
        for _ in 0..<3 { transport.enqueue("get-key", Self.error(429, "Throttled", "Too many requests")) }
        let vault = try Fixtures.vault(transport, runtime: clock)
        let error = await expectError(.throttled) { _ = try await vault.snapshot(of: key) }
        #expect(error?.retryAfter == nil)
        #expect(clock.sleeps == [.milliseconds(375), .milliseconds(750)], "equal jitter: half the step plus jitter × half")
        #expect(vault.requestCounts["get-key"] == 3, "the retry budget is three attempts")
    }

    @Test("a Retry-After beyond the provider's patience is handed to the caller at once")
    func longRetryAfter() async throws {
        let transport = ScriptedTransport(), clock = ManualRuntime()
        transport.enqueue("get-key", Self.error(429, "Throttled", "Too many requests", headers: [("Retry-After", "120")]))
        let error = await expectError(.throttled) { _ = try await Fixtures.vault(transport, runtime: clock).snapshot(of: key) }
        #expect(error?.retryAfter == .seconds(120))
        #expect(clock.sleeps.isEmpty)
        #expect(RetryAfter.parse("Wed, 21 Oct 2015 07:28:30 GMT", now: Date(timeIntervalSince1970: 1_445_412_480)) == .seconds(30))
        #expect(RetryAfter.parse("soon", now: Date()) == nil)
    }

    @Test("5xx and timeouts are retried, then reported as unavailable; create is not repeated after a 5xx")
    func outages() async throws {
        let transport = ScriptedTransport(), clock = ManualRuntime()
        transport.enqueue("get-key", Self.error(503, "ServiceUnavailable", "The service is unavailable."))
        transport.fail("get-key", AzureTransportError(.timeout, "no answer within the timeout"))
        transport.enqueue("get-key", .json(200, Self.bundle("01")))
        transport.enqueue("list-versions", .json(200, #"{"value":[\#(Self.item("01", created: 1_778_515_984))]}"#))
        let vault = try Fixtures.vault(transport, runtime: clock)
        guard case .present = try await vault.snapshot(of: key) else { Issue.record("not present"); return }
        #expect(clock.sleeps.count == 2)

        for _ in 0..<3 { transport.fail("get-key", AzureTransportError(.connection, "connection refused")) }
        let refused = await expectError(.unavailable) { _ = try await vault.snapshot(of: key) }
        #expect(refused?.reason.contains("connection refused") == true)

        transport.enqueue("get-key", Self.error(404, "KeyNotFound", "not found"))
        transport.enqueue("create-key", Self.error(500, "InternalError", "boom"))
        _ = await expectError(.unavailable) { _ = try await vault.createKey(key, size: .bits2048) }
        #expect(vault.requestCounts["create-key"] == 1, "a non-idempotent create is not resent after a 5xx")
    }

    @Test("malformed JSON is a named corrupt-response error, never a crash")
    func malformedJSON() async throws {
        let transport = ScriptedTransport()
        transport.enqueue("get-key", AzureHTTPResponse(status: 200, body: Data("{\"key\": [".utf8)))
        transport.enqueue("get-key", .json(200, #"{"key":{"kid":"https://x.vault.azure.net/keys/k/01"},"attributes":{}}"#))
        transport.enqueue("unwrap", .json(200, #"{"kid":"k","value":"***"}"#))
        transport.enqueue("get-key", AzureHTTPResponse(status: 302, headers: [("Location", "https://elsewhere")]))
        let vault = try Fixtures.vault(transport)
        let bad = await expectError(.corrupt) { _ = try await vault.snapshot(of: key) }
        #expect(bad?.reason.contains("malformed JSON in the get-key answer") == true)
        let noDate = await expectError(.corrupt) { _ = try await vault.snapshot(of: key) }
        #expect(noDate?.reason.contains("no created date") == true)
        _ = await expectError(.corrupt) { _ = try await vault.unwrap(Data([1]), key: key, version: version, algorithm: .rsaOAEP256) }
        _ = await expectError(.misconfigured) { _ = try await vault.snapshot(of: key) }
    }

    @Test("a second 401 after re-authentication is unauthorized; a foreign resource is refused")
    func challengeFailures() async throws {
        let challenge = (name: "WWW-Authenticate", value: #"Bearer authorization="https://login.microsoftonline.com/\#(Fixtures.tenant)", resource="https://vault.azure.net""#)
        let transport = ScriptedTransport()
        transport.enqueue("get-key", Self.error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", headers: [challenge]))
        transport.enqueue("get-key", Self.error(401, "Unauthorized", "AKV10032: Invalid issuer.", headers: [challenge]))
        let vault = try Fixtures.vault(transport)
        let error = await expectError(.unauthorized) { _ = try await vault.snapshot(of: key) }
        #expect(error?.reason.contains("AKV10032") == true)
        #expect(transport.requests.count == 2, "the challenge is answered once per request")

        let evil = ScriptedTransport()
        evil.enqueue("get-key", Self.error(401, "Unauthorized", "x", headers: [("WWW-Authenticate", #"Bearer authorization="https://login.microsoftonline.com/\#(Fixtures.tenant)", resource="https://management.azure.com""#)]))
        let refused = await expectError(.unauthorized) { _ = try await Fixtures.vault(evil).snapshot(of: key) }
        #expect(refused?.reason.contains("management.azure.com") == true)
        #expect(evil.tokenRequests.count == 1, "no token is fetched for a foreign resource")
    }

    @Test("the rate limiter lets a burst through and then spaces requests")
    func rateLimiter() async throws {
        let clock = ManualRuntime()
        let limiter = RateLimiter(operations: 3, period: .seconds(1), runtime: clock.runtime)
        for _ in 0..<3 { try await limiter.acquire() }
        #expect(clock.sleeps.isEmpty)
        try await limiter.acquire()
        try await limiter.acquire()
        #expect(clock.sleeps.count == 2)
        #expect(clock.sleeps.allSatisfy { $0 >= .milliseconds(333) && $0 <= .milliseconds(334) })
        clock.advance(.seconds(5))
        for _ in 0..<3 { try await limiter.acquire() }
        #expect(clock.sleeps.count == 2, "the bucket refills up to its capacity")
        #expect(AzureKeyVaultConfiguration.RateLimit.default.operations < 2000, "below the documented 2,000 HSM operations per 10 s")
    }

    @Test("the provider-level limiter holds requests to the configured rate")
    func providerRateLimit() async throws {
        let transport = ScriptedTransport(), clock = ManualRuntime()
        for _ in 0..<4 { transport.enqueue("unwrap", .json(200, #"{"kid":"k","value":"AA"}"#)) }
        let vault = try Fixtures.vault(transport, runtime: clock, rateLimit: .init(operations: 2, period: .seconds(10)))
        for _ in 0..<4 { _ = try await vault.unwrap(Data([1]), key: key, version: version, algorithm: .rsaOAEP256) }
        #expect(clock.sleeps == [.seconds(5), .seconds(5)])
    }

    @Test("backoff doubles up to the cap with equal jitter")
    func backoff() {
        let policy = RequestRetryPolicy(maxAttempts: 6, baseDelay: .seconds(1), maxDelay: .seconds(8), maximumRetryAfter: .seconds(10))
        #expect((1...5).map { policy.backoff(afterAttempt: $0, jitter: 0) } == [.milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(4)])
        #expect(policy.backoff(afterAttempt: 3, jitter: 0.999_999) < .seconds(4))
        #expect(policy.backoff(afterAttempt: 3, jitter: 1) == .seconds(4))
    }
}
