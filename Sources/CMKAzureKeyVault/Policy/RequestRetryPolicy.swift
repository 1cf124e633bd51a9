import Foundation

/// Provider-level retries of one request for 429, 5xx and timeouts: equal-jitter exponential
/// backoff, `Retry-After` honoured when it is within ``maximumRetryAfter`` (a longer one is
/// handed to the caller as ``CMKCore/VaultError/retryAfter`` instead of blocking the pass).
public struct RequestRetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included (1 = no retries).
    public var maxAttempts: Int
    /// The first backoff; doubles each time.
    public var baseDelay: Duration
    /// The longest backoff.
    public var maxDelay: Duration
    /// The longest `Retry-After` the provider waits out itself.
    public var maximumRetryAfter: Duration

    /// 3 attempts, 0.5 s doubling to at most 4 s, `Retry-After` waited up to 10 s.
    public static let `default` = RequestRetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(500), maxDelay: .seconds(4),
                                              maximumRetryAfter: .seconds(10))

    public init(maxAttempts: Int, baseDelay: Duration, maxDelay: Duration, maximumRetryAfter: Duration) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maximumRetryAfter = maximumRetryAfter
    }

    /// The wait before attempt `attempt + 1` (after `attempt` failed attempts, from 1) with
    /// `jitter` in [0, 1): half the exponential step plus a random half.
    public func backoff(afterAttempt attempt: Int, jitter: Double) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let step = min(baseDelay * (1 << exponent), maxDelay)
        return step / 2 + step / 2 * min(max(jitter, 0), 1)
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
enum RetryAfter {
    static func parse(_ value: String?, now: Date) -> Duration? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Int(value), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return .seconds(max(0, Int(date.timeIntervalSince(now).rounded(.up))))
    }
}
