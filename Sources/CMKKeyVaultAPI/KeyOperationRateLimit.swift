import Foundation
import Synchronization

/// A per-vault budget of key operations, as Azure Key Vault's service limits have one
/// ("maximum transactions allowed in 10 seconds, per vault"; RSA 2,048-bit HSM keys: 2,000):
/// beyond `operations` requests in a `window`, a request is answered 429 `Throttled` with
/// `Retry-After` (the seconds until the window ends) and Azure's error body, and is not done.
///
/// One implementation for `cmk-vault` (`limits.key-operations-per-10s`, applied to the keys API
/// routes) and for the Azure test server (its `rateLimit`). The window is fixed and runs on real
/// (monotonic) time, so throttling clears for a client that waits whatever a test's wall clock
/// does. As on Azure, a refused request does not count against the budget.
public final class KeyOperationRateLimit: Sendable {
    private struct Window: Sendable {
        var start: ContinuousClock.Instant?
        var count = 0
    }

    /// Operations admitted per window.
    public let operations: Int
    /// The window's length (Azure's is 10 s).
    public let window: Duration
    private let state = Mutex(Window())

    /// - Precondition: `operations` ≥ 1 and `window` positive (configuration readers check that first).
    public init(operations: Int, window: Duration = .seconds(10)) {
        precondition(operations >= 1 && window > .zero, "a rate limit needs at least 1 operation per positive window")
        self.operations = operations
        self.window = window
    }

    /// Counts one operation at `now`; nil when it is admitted, else the whole seconds (at least 1)
    /// to send in `Retry-After`.
    public func admit(now: ContinuousClock.Instant = .now) -> Int? {
        state.withLock { state in
            if let start = state.start, now - start < window {
                guard state.count < operations else {
                    let remaining = window - (now - start)
                    let seconds = Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18
                    return max(1, Int(seconds.rounded(.up)))
                }
                state.count += 1
            } else {
                state.start = now
                state.count = 1
            }
            return nil
        }
    }

    /// Counts one operation; nil when it is admitted, else Azure's 429 answer to send instead.
    public func throttle() -> ServerResponse? {
        admit().map { KeyVaultError.throttled(retryAfter: $0).response }
    }
}
