import Foundation

/// Exponential backoff with jitter for transient vault failures (SPEC §5: 1, 2, 4, 8, 16 s, capped).
public struct RetryPolicy: Hashable, Sendable {
    /// Attempts in total (the first try included). Default 5.
    public var attempts: Int
    public var initialDelay: Duration
    public var maxDelay: Duration
    /// The longest `Retry-After` honoured; longer ones are capped so a pass never hangs.
    public var maxRetryAfter: Duration

    public init(attempts: Int = 5, initialDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(16),
                maxRetryAfter: Duration = .seconds(120)) {
        self.attempts = attempts
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    /// The nominal delay before retry `n` (1-based): initial × 2^(n-1), capped.
    public func nominalDelay(retry n: Int) -> Duration {
        var delay = initialDelay
        for _ in 1..<max(n, 1) {
            delay *= 2
            if delay >= maxDelay { return maxDelay }
        }
        return min(delay, maxDelay)
    }

    /// The delay to sleep before retry `n`: the server's `Retry-After` when given (capped),
    /// otherwise the nominal delay with "equal jitter" (uniform in [d/2, d]) so a fleet spreads out.
    /// - Parameter unit: a random number in [0, 1).
    public func delay(retry n: Int, retryAfter: Duration?, unit: Double) -> Duration {
        if let retryAfter { return min(max(retryAfter, .zero), maxRetryAfter) }
        let nominal = nominalDelay(retry: n)
        return nominal / 2 + nominal * (unit / 2)
    }
}
