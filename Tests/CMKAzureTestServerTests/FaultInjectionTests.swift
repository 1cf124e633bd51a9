import Foundation
import Testing

@testable import CMKAzureTestServer

/// Injected faults, the rate limit and the request log.
@Suite("Azure test server: faults, rate limit, request log")
struct FaultInjectionTests {
    @Test("429 with and without Retry-After, for exactly the injected number of matching requests")
    func throttling() async throws {
        try await Harness.with { harness in
            let token = try await harness.token()
            harness.server.inject(.throttled(retryAfter: 7), times: 2, matching: .vault("GET", path: "/keys/a"))
            harness.server.inject(.throttled(retryAfter: nil), times: 1, matching: .vault(path: "/keys/b"))
            #expect(try await harness.send(.GET, "/keys/c/", token: token).status == 404)
            for _ in 0..<2 {
                let reply = try await harness.send(.GET, "/keys/a/", token: token)
                #expect(reply.status == 429)
                #expect(reply.headers["Retry-After"].first == "7")
                #expect(reply.errorCode == "Throttled")
            }
            #expect(try await harness.send(.GET, "/keys/a/", token: token).status == 404)
            let noHeader = try await harness.send(.GET, "/keys/b/", token: token)
            #expect(noHeader.status == 429 && noHeader.headers["Retry-After"].isEmpty)
            #expect(try await harness.send(.GET, "/keys/b/", token: token).status == 404)
        }
    }

    @Test("5xx faults carry Azure's error body", arguments: [500, 502, 503])
    func serverErrors(_ status: Int) async throws {
        try await Harness.with { harness in
            let token = try await harness.token()
            harness.server.inject(.serverError(status: status))
            let reply = try await harness.send(.GET, "/keys/k/", token: token)
            #expect(reply.status == status)
            #expect(reply.errorCode != nil)
            #expect(try await harness.send(.GET, "/keys/k/", token: token).status == 404)
        }
    }

    @Test("the challenge round trip does not consume a vault fault")
    func challengeNotFaulted() async throws {
        try await Harness.with { harness in
            harness.server.inject(.serverError(status: 503))
            #expect(try await harness.send(.GET, "/keys/k/").status == 401)
            let token = try await harness.token()
            #expect(try await harness.send(.GET, "/keys/k/", token: token).status == 503)
        }
    }

    @Test("latency delays the normal answer")
    func latency() async throws {
        try await Harness.with { harness in
            let token = try await harness.token()
            harness.server.inject(.latency(.milliseconds(800)), matching: .unwrap)
            let start = ContinuousClock.now
            #expect(try await harness.send(.GET, "/keys/k/", token: token).status == 404)
            #expect(ContinuousClock.now - start < .milliseconds(800))
            let key = try await harness.createKey("slow", token: token)
            let wrapped = try await harness.send(.POST, "/keys/slow/\(key.version)/wrapkey", json: ["alg": "RSA-OAEP-256", "value": "AQID"], token: token)
            let delayedStart = ContinuousClock.now
            let reply = try await harness.send(.POST, "/keys/slow/\(key.version)/unwrapkey", json: ["alg": "RSA-OAEP-256", "value": wrapped.json["value"] as? String ?? ""], token: token)
            #expect(ContinuousClock.now - delayedStart >= .milliseconds(800))
            #expect(reply.status == 200 && reply.json["value"] as? String == "AQID")
        }
    }

    @Test("403 ForbiddenByRbac, 401, malformed JSON and a closed connection")
    func otherFaults() async throws {
        try await Harness.with { harness in
            let token = try await harness.token()
            harness.server.inject(.forbiddenByRbac)
            let rbac = try await harness.send(.GET, "/keys/k/", token: token)
            #expect(rbac.status == 403 && rbac.errorCode == "Forbidden")
            #expect(((rbac.json["error"] as? [String: Any])?["innererror"] as? [String: Any])?["code"] as? String == "ForbiddenByRbac")
            harness.server.inject(.unauthorized)
            let unauthorized = try await harness.send(.GET, "/keys/k/", token: token)
            #expect(unauthorized.status == 401 && !unauthorized.headers["WWW-Authenticate"].isEmpty)
            harness.server.inject(.malformedJSON)
            let malformed = try await harness.send(.GET, "/keys/k/", token: token)
            #expect(malformed.status == 200)
            #expect((try? JSONSerialization.jsonObject(with: malformed.body)) == nil)
            harness.server.inject(.closeConnection)
            await #expect(throws: (any Error).self) { _ = try await harness.send(.GET, "/keys/k/", token: token) }
            #expect(try await harness.send(.GET, "/keys/k/", token: token).status == 404)
        }
    }

    @Test("faults can target the token endpoint")
    func tokenFaults() async throws {
        try await Harness.with { harness in
            harness.server.inject(.serverError(status: 503), matching: .token)
            await #expect(throws: HarnessError.self) { _ = try await harness.token() }
            _ = try await harness.token()
        }
    }

    @Test("the rate limit answers 429 Throttled with Retry-After beyond N operations per window, and clears after it")
    func rateLimit() async throws {
        try await Harness.with({ $0.rateLimit = .init(operations: 3, window: .seconds(8)) }) { harness in
            let token = try await harness.token()
            let start = ContinuousClock.now
            for _ in 0..<3 { #expect(try await harness.send(.GET, "/keys/k/", token: token).status == 404) }
            let throttled = try await harness.send(.GET, "/keys/k/", token: token)
            try #require(ContinuousClock.now - start < .seconds(8), "the machine is too slow for an 8 s window")
            #expect(throttled.status == 429)
            #expect(throttled.errorCode == "Throttled")
            let retryAfter = try #require(Int(throttled.headers["Retry-After"].first ?? ""))
            #expect((1...8).contains(retryAfter))
            try await Task.sleep(for: .seconds(retryAfter))
            #expect(try await harness.send(.GET, "/keys/k/", token: token).status == 404)
        }
    }

    @Test("the request log has every request with endpoint, method, path, query and status, and no secrets")
    func requestLog() async throws {
        try await Harness.with { harness in
            _ = try await harness.send(.GET, "/keys/k/")
            let token = try await harness.token()
            _ = try await harness.send(.GET, "/keys/k/", token: token)
            harness.server.inject(.closeConnection)
            _ = try? await harness.send(.GET, "/keys/k/versions", token: token)
            let log = harness.server.requests
            #expect(log.map(\.endpoint) == [.vault, .token, .vault, .vault])
            #expect(log.map(\.status) == [401, 200, 404, nil])
            #expect(log[0].hadAuthorization == false && log[2].hadAuthorization == true)
            #expect(log[2].path == "/keys/k/" && log[2].query == "api-version=7.6")
            #expect(log[3].fault == .closeConnection)
            #expect(!"\(log)".contains(Harness.secret) && !"\(log)".contains(token))
            harness.server.clearRequests()
            #expect(harness.server.requests.isEmpty)
        }
    }
}
