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

/// A monotonic clock that only the recorded sleeps (and `advance`) move: bounds are checked
/// without real waiting.
final class VirtualTime: Sendable {
    private let state: Mutex<(now: ContinuousClock.Instant, slept: [Duration])> = Mutex((.now, []))
    var delays: [Duration] { state.withLock { $0.slept } }
    var now: @Sendable () -> ContinuousClock.Instant { { [self] in state.withLock { $0.now } } }
    var sleep: @Sendable (Duration) async throws -> Void {
        { [self] duration in state.withLock { $0.slept.append(duration); $0.now += duration } }
    }
    func advance(_ duration: Duration) { state.withLock { $0.now += duration } }
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

    @Test("a reader gives up at once when the vault asks for more than its bound, saying how long it asked")
    func readerGivesUpOnLongRetryAfter() async throws {
        let time = VirtualTime()
        let throttle = VaultThrottle(maxWait: .seconds(10), sleep: time.sleep, now: time.now)
        let calls = Atomic<Int>(0)
        let error = await #expect(throws: VaultError.self) {
            try await throttle.perform { () async throws -> Int in
                calls.add(1, ordering: .relaxed)
                throw VaultError(.throttled, "the vault is throttling unwrap (HTTP 429 Throttled)", retryAfter: .seconds(3600))
            }
        }
        #expect(calls.load(ordering: .relaxed) == 1, "no second request while the vault asks for an hour")
        #expect(time.delays.isEmpty, "no waiting at all: \(time.delays)")
        #expect(error?.code == .throttled && error?.category == .transient)
        #expect(error?.retryAfter == .seconds(3600))
        let reason = error?.reason ?? ""
        #expect(reason.contains("the vault is throttling: it asked to wait 3600 s (Retry-After)"), "\(reason)")
        #expect(reason.contains("cache.read-wait: 10 s") && reason.contains("try again later"), "\(reason)")
        #expect(reason.contains("unwrap"), "the vault's own refusal is kept: \(reason)")
    }

    @Test("a reader waits short pauses until the next would pass its bound, time spent in the call included; the sync pass waits on")
    func readerBoundCountsEverything() async throws {
        // Each refusal costs 1 s inside the call (the provider's own short retries), then asks for 3 s.
        final class Refusals: Sendable {
            let time: VirtualTime, count: Int, calls = Atomic<Int>(0)
            init(_ count: Int, _ time: VirtualTime) { (self.count, self.time) = (count, time) }
            func call() async throws -> Int {
                time.advance(.seconds(1))
                if calls.add(1, ordering: .relaxed).newValue <= count { throw VaultError(.throttled, "429", retryAfter: .seconds(3)) }
                return 7
            }
        }
        let reader = VirtualTime()
        let bounded = VaultThrottle(maxWait: .seconds(10), sleep: reader.sleep, now: reader.now)
        let error = await #expect(throws: VaultError.self) { try await bounded.perform(Refusals(5, reader).call) }
        // 1 + 3 + 1 + 3 = 8 s spent; the third refusal (at 9 s) asks for 3 more: 12 s > 10 s.
        #expect(reader.delays == [.seconds(3), .seconds(3)], "\(reader.delays)")
        #expect(error?.code == .throttled && error?.reason.contains("asked to wait 3 s") == true, "\(String(describing: error))")

        let sync = VirtualTime()
        let patient = VaultThrottle(sleep: sync.sleep, now: sync.now)
        #expect(try await patient.perform(Refusals(5, sync).call) == 7)
        #expect(sync.delays == Array(repeating: .seconds(3), count: 5))
    }

    @Test("a sweep stops at the first refusal of a throttling vault instead of asking again for every object")
    func sweepStopsOnThrottling() async throws {
        let h = try Harness()
        _ = try await h.vault.createKey(h.key, size: .bits2048)
        let account = h.account()
        _ = try await h.executor.rebind(account, to: try await h.current())
        for index in 0..<5 { _ = try await h.plane.put(account, try ObjectName("obj-\(index)"), bytes("payload \(index)")) }
        _ = try await h.executor.rebind(account, to: try await h.vault.rotateKey(h.key))

        let faults = FaultInjectingKeyVault(h.vault)
        faults.failAlways(.unwrap, with: VaultError(.throttled, "the vault is throttling unwrap (HTTP 429)", retryAfter: .seconds(3600)))
        let time = VirtualTime()
        let reader = DEKResolver(vault: faults, cache: DEKCache(configuration: try .init(), clock: h.clock),
                                 throttle: VaultThrottle(maxWait: .seconds(10), sleep: time.sleep, now: time.now))
        let error = await #expect(throws: VaultError.self) { _ = try await DataPlane(resolver: reader).sweep(account) }
        #expect(error?.code == .throttled && error?.reason.contains("asked to wait 3600 s") == true, "\(String(describing: error))")
        #expect(reader.throttle.throttledCount == 1, "one request reached the vault")
        #expect(time.delays.isEmpty)
    }
}

