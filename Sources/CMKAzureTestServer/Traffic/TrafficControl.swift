import Foundation
import Synchronization

/// Queued faults, the rate limiter and the request log, behind one lock.
final class TrafficControl: Sendable {
    private struct QueuedFault: Sendable {
        var fault: Fault
        var remaining: Int
        var matcher: RequestMatcher
    }

    private struct State: Sendable {
        var faults: [QueuedFault] = []
        var log: [RecordedRequest] = []
        var windowStart: ContinuousClock.Instant?
        var windowCount = 0
    }

    private let state = Mutex(State())
    private let rateLimit: AzureKeyVaultTestServer.RateLimit?

    init(rateLimit: AzureKeyVaultTestServer.RateLimit?) {
        self.rateLimit = rateLimit
    }

    func inject(_ fault: Fault, times: Int, matching matcher: RequestMatcher) {
        guard times > 0 else { return }
        state.withLock { $0.faults.append(QueuedFault(fault: fault, remaining: times, matcher: matcher)) }
    }

    func clearFaults() { state.withLock { $0.faults.removeAll() } }

    /// The first queued fault matching the request, consumed once.
    func takeFault(_ endpoint: RecordedRequest.Endpoint, method: String, path: String) -> Fault? {
        state.withLock { state in
            guard let index = state.faults.firstIndex(where: { $0.matcher.matches(endpoint, method: method, path: path) }) else { return nil }
            let fault = state.faults[index].fault
            state.faults[index].remaining -= 1
            if state.faults[index].remaining == 0 { state.faults.remove(at: index) }
            return fault
        }
    }

    /// Counts one vault operation; returns the seconds to put in `Retry-After` when over the limit.
    /// The window runs on real (monotonic) time, so throttling clears for a client that waits,
    /// whatever the injected wall clock does.
    func admit() -> Int? {
        guard let rateLimit else { return nil }
        let now = ContinuousClock.now
        return state.withLock { state in
            if let start = state.windowStart, now - start < rateLimit.window {
                state.windowCount += 1
            } else {
                state.windowStart = now
                state.windowCount = 1
            }
            guard state.windowCount > rateLimit.operations, let start = state.windowStart else { return nil }
            let remaining = rateLimit.window - (now - start)
            let seconds = Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18
            return max(1, Int(seconds.rounded(.up)))
        }
    }

    func record(_ request: RecordedRequest) { state.withLock { $0.log.append(request) } }

    var log: [RecordedRequest] { state.withLock { $0.log } }

    func clearLog() { state.withLock { $0.log.removeAll() } }
}
