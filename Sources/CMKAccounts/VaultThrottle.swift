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
///
/// Readers (the data plane: `cmkctl data get/put/sweep`) have someone waiting on them, so their
/// throttle has a ``maxWait`` (`cache.read-wait`): a call that would have to wait beyond it in all
/// gives up at once with `.throttled` saying how long the vault asked to wait. The sync pass has
/// no such bound; it waits out ``attempts`` refusals. Pauses sleep through ``Heartbeat/sleep(for:)``:
/// a pass's watchdog heartbeat goes on while it waits, and a stopping daemon ends the wait at once.
public final class VaultThrottle: Sendable {
    /// Tries per call, the first included. Default 8.
    public let attempts: Int
    /// The first delay without `Retry-After`; it doubles up to ``maxDelay``.
    public let initialDelay: Duration
    public let maxDelay: Duration
    /// The longest `Retry-After` honoured.
    public let maxRetryAfter: Duration
    /// The longest one call may take, from its start to the end of a pause, before it gives up
    /// instead of waiting; nil for no bound but ``attempts``.
    public let maxWait: Duration?
    private let sleep: @Sendable (Duration) async throws -> Void
    private let random: @Sendable () -> Double
    private let now: @Sendable () -> ContinuousClock.Instant
    /// Until when every caller waits, and how many 429s were seen.
    private let state = Mutex<(pausedUntil: ContinuousClock.Instant?, throttled: Int)>((nil, 0))

    /// - Parameters:
    ///   - sleep: waits; injected by tests, which pass a `now` that the sleep advances.
    ///   - now: the monotonic clock pauses and ``maxWait`` are measured on.
    public init(attempts: Int = 8, initialDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(16),
                maxRetryAfter: Duration = .seconds(120), maxWait: Duration? = nil,
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Heartbeat.sleep(for: $0) },
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
                now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.attempts = max(1, attempts)
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
        self.maxWait = maxWait.map { max($0, .zero) }
        self.sleep = sleep
        self.random = random
        self.now = now
    }

    /// Refusals (`.throttled`) seen so far.
    public var throttledCount: Int { state.withLock { $0.throttled } }

    /// Whether callers are pausing now for the vault's `Retry-After` (or backoff): the key-state
    /// probe, which must never take a place ahead of them, skips its turn.
    public var isPaused: Bool { state.withLock { $0.pausedUntil.map { $0 > now() } ?? false } }

    /// Runs `operation`, waiting out and retrying throttling.
    public func perform<T>(_ operation: () async throws -> T) async throws -> T {
        let start = now()
        var refusal: VaultError?
        var attempt = 0
        while true {
            attempt += 1
            let pause = state.withLock { $0.pausedUntil }.map { $0 - now() } ?? .zero
            if pause > .zero {
                if let maxWait, now() - start + pause > maxWait {
                    throw Self.givingUp(refusal, pause: pause, maxWait: maxWait)
                }
                do {
                    try await sleep(pause)
                } catch is CancellationError {
                    throw Self.abandoned(refusal, pause: pause)
                }
            }
            do {
                return try await operation()
            } catch let error as VaultError where error.code == .throttled && attempt < attempts {
                refusal = error
                let delay = error.retryAfter.map { min(max($0, .zero), maxRetryAfter) } ?? backoff(attempt)
                let current = now()
                let until = current + delay
                let extended = state.withLock { state -> Duration in
                    state.throttled += 1
                    let before = max(state.pausedUntil ?? current, current)
                    if state.pausedUntil.map({ $0 < until }) ?? true { state.pausedUntil = until }
                    return until > before ? until - before : .zero
                }
                if let observer = VaultObservation.observer {
                    observer.vaultRetry(.throttle)
                    if extended > .zero { observer.vaultThrottlePaused(seconds: extended.timeInterval) }
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

    /// The reader's error: the vault is throttling, how long it asked to wait, and the bound.
    static func givingUp(_ refusal: VaultError?, pause: Duration, maxWait: Duration) -> VaultError {
        let asked = refusal?.retryAfter.map { "it asked to wait \(seconds($0)) s (Retry-After)" }
            ?? "the next try is \(seconds(pause)) s away"
        return VaultError(
            .throttled,
            "the vault is throttling: \(asked), longer than a reader waits (cache.read-wait: \(seconds(maxWait)) s), so the read gives up now; try again later\(refusal.map { " — \($0.reason)" } ?? "")",
            retryAfter: refusal?.retryAfter ?? pause)
    }

    /// The daemon is stopping (or the task was cancelled) during a pause: the call is not tried again.
    static func abandoned(_ refusal: VaultError?, pause: Duration) -> VaultError {
        VaultError(.unavailable, "the wait for the throttling vault (\(seconds(pause)) s to go) was abandoned because the daemon is stopping; the call was not tried again\(refusal.map { " — \($0.reason)" } ?? "")",
                   retryAfter: refusal?.retryAfter)
    }

    /// Seconds without a trailing `.0`: `3600`, `0.25`.
    static func seconds(_ duration: Duration) -> String {
        String(format: "%g", duration.timeInterval)
    }
}
