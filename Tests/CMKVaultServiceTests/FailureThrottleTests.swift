import CMKAzureTestServer
@testable import CMKVaultService
import Foundation
import Testing

/// ``FailureThrottle`` on explicit instants: the per-client and per-address limits, the sliding
/// window, the `Retry-After` value (whole seconds, rounded up) and keys that do not affect each
/// other. That a success resets nothing is checked against the real service below.
@Suite struct FailureThrottleTests {
    let t0 = ContinuousClock.now

    func throttle(perClient: Int = 100, perAddress: Int = 100, window: Duration = .seconds(300)) -> FailureThrottle {
        FailureThrottle(limits: .init(perClient: perClient, perAddress: perAddress, window: window))
    }

    @Test("per client id: the limit counts that client's failures from any address; other clients are not affected")
    func perClient() {
        let throttle = throttle(perClient: 3)
        for (offset, address) in ["192.0.2.1", "192.0.2.2"].enumerated() {
            throttle.recordFailure(clientID: "alice", address: address, now: t0 + .seconds(offset))
        }
        #expect(throttle.retryAfter(clientID: "alice", address: "192.0.2.9", now: t0 + .seconds(2)) == nil, "two failures of three")
        throttle.recordFailure(clientID: "alice", address: "192.0.2.3", now: t0 + .seconds(2))
        #expect(throttle.retryAfter(clientID: "alice", address: "192.0.2.9", now: t0 + .seconds(3)) == 297, "the oldest failure (t0) leaves at t0+300")
        #expect(throttle.retryAfter(clientID: "bob", address: "192.0.2.9", now: t0 + .seconds(3)) == nil, "another client id")
        #expect(throttle.retryAfter(clientID: nil, address: "192.0.2.1", now: t0 + .seconds(3)) == nil, "an address with one failure")
    }

    @Test("per address: failures of different client ids (and of bearer tokens, no client id) from one address add up; other addresses are not affected")
    func perAddress() {
        let throttle = throttle(perAddress: 3)
        throttle.recordFailure(clientID: "c1", address: "198.51.100.7", now: t0)
        throttle.recordFailure(clientID: "c2", address: "198.51.100.7", now: t0 + .seconds(10))
        #expect(throttle.retryAfter(clientID: "c3", address: "198.51.100.7", now: t0 + .seconds(10)) == nil)
        throttle.recordFailure(clientID: nil, address: "198.51.100.7", now: t0 + .seconds(20))
        #expect(throttle.retryAfter(clientID: "c4", address: "198.51.100.7", now: t0 + .seconds(20)) == 280)
        #expect(throttle.retryAfter(clientID: nil, address: "198.51.100.7", now: t0 + .seconds(20)) == 280, "a bearer request from the address")
        #expect(throttle.retryAfter(clientID: "c1", address: "198.51.100.8", now: t0 + .seconds(20)) == nil, "c1 alone has one failure; another address")
    }

    @Test("the window slides: Retry-After is when the oldest counted failure leaves it, rounded up to whole seconds (at least 1); then one more attempt is allowed")
    func window() {
        let throttle = throttle(perClient: 2, window: .seconds(60))
        throttle.recordFailure(clientID: "x", address: "a", now: t0)
        throttle.recordFailure(clientID: "x", address: "b", now: t0 + .seconds(30))
        #expect(throttle.retryAfter(clientID: "x", address: "c", now: t0 + .milliseconds(30_500)) == 30, "29.5 s rounded up")
        #expect(throttle.retryAfter(clientID: "x", address: "c", now: t0 + .milliseconds(59_900)) == 1, "0.1 s is 1")
        #expect(throttle.retryAfter(clientID: "x", address: "c", now: t0 + .seconds(60)) == nil, "the failure at t0 left the window")
        throttle.recordFailure(clientID: "x", address: "c", now: t0 + .seconds(61))
        #expect(throttle.retryAfter(clientID: "x", address: "c", now: t0 + .seconds(62)) == 28, "the failures at t0+30 and t0+61: the one at t0+30 leaves at t0+90")
        #expect(throttle.retryAfter(clientID: "x", address: "c", now: t0 + .seconds(121)) == nil, "both left")
    }

    @Test("the longer wait wins when both the client and the address are over their limits")
    func both() {
        let throttle = throttle(perClient: 1, perAddress: 2)
        throttle.recordFailure(clientID: "y", address: "z", now: t0)
        throttle.recordFailure(clientID: "w", address: "z", now: t0 + .seconds(100))
        // At t0+150, client w: its failure at t0+100 leaves at t0+400 (250 s); address z: its older failure (t0) at t0+300 (150 s).
        #expect(throttle.retryAfter(clientID: "w", address: "z", now: t0 + .seconds(150)) == 250)
        #expect(throttle.retryAfter(clientID: "w", address: "q", now: t0 + .seconds(150)) == 250)
        #expect(throttle.retryAfter(clientID: "y", address: "q", now: t0 + .seconds(350)) == nil)
    }
}

/// `authentication.failures-per-address` in the real service: one address cycling unknown client
/// ids (each under its own per-client limit) is refused with 429 and `Retry-After` once the
/// address's failures reach the limit; a successful sign-in in between resets nothing; the
/// throttled address is refused on bearer routes too, and the throttled sign-ins are records.
@Suite(.serialized) struct FailureThrottleProcessTests {
    @Test("failures-per-address 3: four unknown client ids from 127.0.0.1 (a good sign-in between) → 400, 400, 200, 400, 429 with Retry-After; then the good secret and a bearer route are 429 too")
    func perAddress() async throws {
        let vault = try VaultProcess.start(failuresPerClient: 100, failuresPerAddress: 3)
        defer { vault.stop() }
        let admin = try vault.ctl(["admins", "add", "Ada Admin", "--json"])
        let adminID = try #require(admin["clientId"] as? String), adminSecret = try #require(admin["secret"] as? String)
        let tenant = try vault.tenantID()
        let (statuses, retryAfter, bearer) = try await VaultHTTPS.with(vault) { https in
            func signIn(_ clientID: String, _ secret: String) async throws -> RecordingReplay.Reply {
                try await https.send(.POST, "/\(tenant)/oauth2/v2.0/token", query: nil,
                                     form: "grant_type=client_credentials&client_id=\(clientID)&client_secret=\(secret)&scope=\(vault.url)/.default")
            }
            var answers: [RecordingReplay.Reply] = []
            for round in 0..<2 { answers.append(try await signIn(UUID().uuidString.lowercased(), "guess-\(round)")) }
            answers.append(try await signIn(adminID, adminSecret))
            for round in 2..<4 { answers.append(try await signIn(UUID().uuidString.lowercased(), "guess-\(round)")) }
            answers.append(try await signIn(adminID, adminSecret))
            let bearer = try await https.send(.GET, "/v1.0/applications", query: nil, token: "not.a.token")
            let retryAfter = answers[4].headers.first { $0.name.lowercased() == "retry-after" }?.value
            return (answers.map(\.status), retryAfter, bearer.status)
        }
        #expect(statuses == [400, 400, 200, 400, 429, 429], "unknown, unknown, good, unknown, unknown, good: \(statuses)")
        let wait = Int(retryAfter ?? "") ?? 0
        #expect(wait > 290 && wait <= 300, "Retry-After within the 5 m window: \(retryAfter ?? "none")")
        #expect(bearer == 429, "a bearer request from the throttled address")
        let throttled = vault.log.split(separator: "\n").filter { $0.contains("CMK_OPERATION=authentication-throttled") }
        #expect(throttled.count == 2, "each throttled sign-in is a record:\n\(vault.log.suffix(3000))")
    }
}
