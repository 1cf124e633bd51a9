import CMKCore
import Foundation
import Synchronization

/// A client-side token bucket: ``acquire()`` returns at once while tokens remain and otherwise
/// waits until the bucket refills. The wait is computed under the lock (the caller reserves its
/// token, so waiters are served in arrival order) and slept outside it.
public final class RateLimiter: Sendable {
    struct Bucket: Sendable {
        let capacity: Double
        /// Tokens per second.
        let rate: Double
        var tokens: Double
        var last: Duration

        /// Takes one token at time `now`; returns how long the caller must wait for it.
        mutating func reserve(at now: Duration) -> Duration {
            let elapsed = max(0, (now - last).timeInterval)
            tokens = min(capacity, tokens + elapsed * rate)
            last = now
            tokens -= 1
            if tokens >= 0 { return .zero }
            return .nanoseconds(Int64((-tokens / rate * 1e9).rounded(.up)))
        }
    }

    private let bucket: Mutex<Bucket>
    private let runtime: AzureRuntime

    public init(operations: Int, period: Duration, runtime: AzureRuntime) {
        let capacity = Double(max(1, operations))
        bucket = Mutex(Bucket(capacity: capacity, rate: capacity / max(period.timeInterval, 0.001), tokens: capacity, last: runtime.monotonicNow()))
        self.runtime = runtime
    }

    /// Waits for one token.
    public func acquire() async throws {
        let now = runtime.monotonicNow()
        let wait = bucket.withLock { $0.reserve(at: now) }
        if wait > .zero { try await runtime.sleep(wait) }
    }
}
