import CMKCore
import Foundation
import Synchronization

/// Backs off together when the vault throttles (SPEC §3, §5: a 429 is an outage, never a reason
/// to fail an account while the vault merely asks us to slow down).
///
/// When a call is refused with `.throttled`, every call that goes through the same throttle waits
/// until the vault's `Retry-After` (or, without one, an equal-jitter exponential delay: 1, 2, 4, 8,
/// 16 s) before trying again, so concurrent workers pause as one instead of each spending
/// requests on more refusals. A call is tried at most ``attempts`` times; other errors pass through.
public final class VaultThrottle: Sendable {
    /// Tries per call, the first included. Default 8.
    public let attempts: Int
    /// The first delay without `Retry-After`; it doubles up to ``maxDelay``.
    public let initialDelay: Duration
    public let maxDelay: Duration
    /// The longest `Retry-After` honoured.
    public let maxRetryAfter: Duration
    private let sleep: @Sendable (Duration) async throws -> Void
    private let random: @Sendable () -> Double
    /// Until when every caller waits, and how many 429s were seen.
    private let state = Mutex<(pausedUntil: ContinuousClock.Instant?, throttled: Int)>((nil, 0))

    public init(attempts: Int = 8, initialDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(16),
                maxRetryAfter: Duration = .seconds(120),
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.attempts = max(1, attempts)
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
        self.sleep = sleep
        self.random = random
    }

    /// Refusals (`.throttled`) seen so far.
    public var throttledCount: Int { state.withLock { $0.throttled } }

    /// Runs `operation`, waiting out and retrying throttling.
    public func perform<T>(_ operation: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            let pause = state.withLock { $0.pausedUntil }.map { $0 - .now } ?? .zero
            if pause > .zero { try await sleep(pause) }
            do {
                return try await operation()
            } catch let error as VaultError where error.code == .throttled && attempt < attempts {
                let delay = error.retryAfter.map { min(max($0, .zero), maxRetryAfter) } ?? backoff(attempt)
                let until = ContinuousClock.now + delay
                state.withLock { state in
                    state.throttled += 1
                    if state.pausedUntil.map({ $0 < until }) ?? true { state.pausedUntil = until }
                }
            }
        }
    }

    /// Equal jitter: uniform in [d/2, d] for d = initial × 2^(attempt-1), capped.
    func backoff(_ attempt: Int) -> Duration {
        var delay = initialDelay
        for _ in 1..<max(attempt, 1) where delay < maxDelay { delay *= 2 }
        let nominal = min(delay, maxDelay)
        return nominal / 2 + nominal * (random() / 2)
    }
}
