import CMKKeyVaultAPI
import Foundation
import Synchronization

/// Queued faults and the request log, behind one lock; the rate limit (``KeyOperationRateLimit``,
/// the one cmk-vault applies too) beside them.
final class TrafficControl: Sendable {
    private struct QueuedFault: Sendable {
        var fault: Fault
        var remaining: Int
        var matcher: RequestMatcher
    }

    private struct State: Sendable {
        var faults: [QueuedFault] = []
        var log: [RecordedRequest] = []
    }

    private let state = Mutex(State())
    private let rateLimit: KeyOperationRateLimit?

    init(rateLimit: AzureKeyVaultTestServer.RateLimit?) {
        self.rateLimit = rateLimit.map { KeyOperationRateLimit(operations: $0.operations, window: $0.window) }
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

    /// Counts one vault operation; Azure's 429 with `Retry-After` when over the limit.
    func throttle() -> ServerResponse? { rateLimit?.throttle() }

    func record(_ request: RecordedRequest) { state.withLock { $0.log.append(request) } }

    var log: [RecordedRequest] { state.withLock { $0.log } }

    func clearLog() { state.withLock { $0.log.removeAll() } }
}
