import CMKKeyVaultAPI
import Foundation
import Testing

/// The one rate limit of the keys API (cmk-vault's `limits.key-operations-per-10s` and the test
/// server's `rateLimit`), on explicit instants.
@Suite("KeyOperationRateLimit")
struct KeyOperationRateLimitTests {
    @Test("N operations per window are admitted, the next gets the seconds left in the window, a refusal does not count, a new window admits again")
    func window() {
        let limit = KeyOperationRateLimit(operations: 3, window: .seconds(10))
        let start = ContinuousClock.now
        for offset in 0..<3 { #expect(limit.admit(now: start + .milliseconds(offset)) == nil, "operation \(offset + 1) of 3") }
        #expect(limit.admit(now: start + .milliseconds(1_500)) == 9, "8.5 s left, rounded up")
        #expect(limit.admit(now: start + .milliseconds(9_990)) == 1, "at least 1 s")
        // The window ends 10 s after its first operation: refusals did not extend or fill it.
        for offset in 0..<3 { #expect(limit.admit(now: start + .seconds(10) + .milliseconds(offset)) == nil) }
        #expect(limit.admit(now: start + .seconds(11)) == 9)
    }

    @Test("the refusal is Azure's: 429 Throttled with Retry-After and the error body")
    func response() throws {
        let limit = KeyOperationRateLimit(operations: 1)
        #expect(limit.throttle() == nil)
        let refused = try #require(limit.throttle())
        #expect(refused.status == 429)
        let retryAfter = try #require(Int(refused.headers.first { $0.name == "Retry-After" }?.value ?? ""))
        #expect((1...10).contains(retryAfter))
        let body = try #require(try JSONSerialization.jsonObject(with: refused.body) as? [String: Any])
        let error = try #require(body["error"] as? [String: Any])
        #expect(error["code"] as? String == "Throttled")
        #expect((error["message"] as? String)?.contains("VaultRequestTypeLimitReached") == true)
    }

    @Test("concurrent callers never get more than N admissions in one window")
    func concurrent() async {
        let limit = KeyOperationRateLimit(operations: 100, window: .seconds(60))
        let admitted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 { group.addTask { (0..<50).filter { _ in limit.admit() == nil }.count } }
            return await group.reduce(0, +)
        }
        #expect(admitted == 100)
    }
}
