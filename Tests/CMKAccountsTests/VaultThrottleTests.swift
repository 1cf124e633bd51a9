import CMKAccounts
import CMKCore
import CMKEnvelope
import CMKTesting
import Foundation
import Synchronization
import Testing

/// Records requested sleeps; sleeps for real only when asked to (the shared pause is measured
/// against the real clock).
final class SleepRecorder: Sendable {
    private let slept = Mutex<[Duration]>([])
    let real: Bool
    init(real: Bool = false) { self.real = real }
    var delays: [Duration] { slept.withLock { $0 } }
    var sleep: @Sendable (Duration) async throws -> Void {
        { [self] duration in
            slept.withLock { $0.append(duration) }
            if real { try await Task.sleep(for: duration) }
        }
    }
}

@Suite("Vault throttle")
struct VaultThrottleTests {
    @Test("a throttled unwrap waits out Retry-After and succeeds; the account does not fail")
    func rebindSurvivesThrottling() async throws {
        let h = try Harness()
        _ = try await h.vault.createKey(h.key, size: .bits2048)
        let account = h.account()
        _ = try await h.executor.rebind(account, to: try await h.current())
        let v2 = try await h.vault.rotateKey(h.key)

        let faults = FaultInjectingKeyVault(h.vault)
        faults.fail(.unwrap, with: [VaultError(.throttled, "429", retryAfter: .milliseconds(300)),
                                    VaultError(.throttled, "429", retryAfter: .milliseconds(100))])
        let recorder = SleepRecorder(real: true)
        let resolver = DEKResolver(vault: faults, cache: DEKCache(configuration: try .init(), clock: h.clock),
                                   throttle: VaultThrottle(sleep: recorder.sleep))
        let result = try await RebindExecutor(resolver: resolver, clock: h.clock).rebind(account, to: v2)

        #expect(result.changed && result.rewrapped == 1)
        #expect(resolver.throttle.throttledCount == 2)
        // Each retry waits until the pause the vault asked for (measured from the refusal, so a hair less).
        let delays = recorder.delays
        #expect(delays.count == 2, "sleeps: \(delays)")
        #expect(delays.first.map { $0 > .milliseconds(200) && $0 <= .milliseconds(300) } == true, "first wait: \(delays)")
        #expect(delays.last.map { $0 > .milliseconds(20) && $0 <= .milliseconds(100) } == true, "second wait: \(delays)")
    }

    @Test("without Retry-After the delay doubles with equal jitter, capped")
    func backoffWithoutRetryAfter() async throws {
        let recorder = SleepRecorder()
        let throttle = VaultThrottle(attempts: 6, initialDelay: .seconds(1), maxDelay: .seconds(4), sleep: recorder.sleep, random: { 0.999_999 })
        let calls = Atomic<Int>(0)
        let value = try await throttle.perform { () async throws -> Int in
            if calls.add(1, ordering: .relaxed).newValue < 5 { throw VaultError(.throttled, "429") }
            return 42
        }
        #expect(value == 42)
        let seconds = recorder.delays.map { ($0 / .milliseconds(1)).rounded() / 1000 }
        #expect(seconds == [1, 2, 4, 4], "delays: \(seconds)")
    }

    @Test("gives up after the last attempt with the vault's error; other errors are not retried")
    func limits() async throws {
        let recorder = SleepRecorder()
        let throttle = VaultThrottle(attempts: 3, sleep: recorder.sleep)
        let calls = Atomic<Int>(0)
        await #expect(throws: VaultError(.throttled, "")) {
            try await throttle.perform { () async throws -> Int in
                calls.add(1, ordering: .relaxed)
                throw VaultError(.throttled, "429", retryAfter: .milliseconds(5))
            }
        }
        #expect(calls.load(ordering: .relaxed) == 3)

        let denied = Atomic<Int>(0)
        await #expect(throws: VaultError(.forbidden, "")) {
            try await throttle.perform { () async throws -> Int in
                denied.add(1, ordering: .relaxed)
                throw VaultError(.forbidden, "403")
            }
        }
        #expect(denied.load(ordering: .relaxed) == 1)
    }
}
