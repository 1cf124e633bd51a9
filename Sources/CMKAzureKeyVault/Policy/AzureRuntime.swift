import CMKCore
import Foundation

/// The provider's view of time and chance, injected so that token renewal, backoff and the rate
/// limiter are tested without sleeping.
public struct AzureRuntime: Sendable {
    /// Monotonic time since an arbitrary origin.
    public var monotonicNow: @Sendable () -> Duration
    /// Wall-clock time (JWT assertion dates, HTTP-date `Retry-After`).
    public var wallNow: @Sendable () -> Date
    /// Suspends for a duration (cancellable).
    public var sleep: @Sendable (Duration) async throws -> Void
    /// A random number in [0, 1) for backoff jitter.
    public var jitter: @Sendable () -> Double

    public init(monotonicNow: @escaping @Sendable () -> Duration, wallNow: @escaping @Sendable () -> Date,
                sleep: @escaping @Sendable (Duration) async throws -> Void, jitter: @escaping @Sendable () -> Double) {
        self.monotonicNow = monotonicNow
        self.wallNow = wallNow
        self.sleep = sleep
        self.jitter = jitter
    }

    /// The real clocks and ``Heartbeat/sleep(for:)`` (`Task.sleep` outside a sync pass; inside one,
    /// back-offs and rate-limit waits keep the watchdog's heartbeat going and end on a stop).
    public static var system: AzureRuntime {
        let origin = ContinuousClock.now
        return AzureRuntime(monotonicNow: { ContinuousClock.now - origin }, wallNow: { Date() },
                            sleep: { try await Heartbeat.sleep(for: $0) }, jitter: { Double.random(in: 0..<1) })
    }
}
