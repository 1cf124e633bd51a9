import Foundation
import Synchronization

/// Counts failed authentications per client id and per source address within a sliding window;
/// once either count reaches its limit, further attempts for that key are refused (429 with
/// `Retry-After`) until the oldest failure leaves the window. A success does not reset the
/// count (an attacker who knows one secret must not clear the throttle on another). Memory is
/// bounded: at most ``maximumKeys`` keys per kind are tracked, the stalest dropped first.
public final class FailureThrottle: Sendable {
    public struct Limits: Sendable {
        public var perClient: Int
        public var perAddress: Int
        public var window: Duration

        public init(perClient: Int, perAddress: Int, window: Duration) {
            self.perClient = perClient
            self.perAddress = perAddress
            self.window = window
        }
    }

    static let maximumKeys = 10_000

    private struct State {
        var clients: [String: [ContinuousClock.Instant]] = [:]
        var addresses: [String: [ContinuousClock.Instant]] = [:]
    }

    public let limits: Limits
    private let state = Mutex(State())

    public init(limits: Limits) { self.limits = limits }

    /// Seconds to wait when `clientID` or `address` is throttled now, else nil.
    public func retryAfter(clientID: String?, address: String, now: ContinuousClock.Instant = .now) -> Int? {
        state.withLock { state in
            var wait: Duration = .zero
            if let clientID, let times = Self.live(&state.clients, clientID, window: limits.window, now: now), times.count >= limits.perClient {
                wait = max(wait, times[times.count - limits.perClient] + limits.window - now)
            }
            if let times = Self.live(&state.addresses, address, window: limits.window, now: now), times.count >= limits.perAddress {
                wait = max(wait, times[times.count - limits.perAddress] + limits.window - now)
            }
            guard wait > .zero else { return nil }
            return max(1, Int(wait.components.seconds) + (wait.components.attoseconds > 0 ? 1 : 0))
        }
    }

    /// Records one failed authentication.
    public func recordFailure(clientID: String?, address: String, now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            if let clientID { Self.append(&state.clients, clientID, now) }
            Self.append(&state.addresses, address, now)
        }
    }

    private static func live(_ table: inout [String: [ContinuousClock.Instant]], _ key: String, window: Duration,
                             now: ContinuousClock.Instant) -> [ContinuousClock.Instant]? {
        guard var times = table[key] else { return nil }
        times.removeAll { now - $0 >= window }
        table[key] = times.isEmpty ? nil : times
        return times
    }

    private static func append(_ table: inout [String: [ContinuousClock.Instant]], _ key: String, _ now: ContinuousClock.Instant) {
        if table[key] == nil, table.count >= maximumKeys,
           let stalest = table.min(by: { ($0.value.last ?? now) < ($1.value.last ?? now) })?.key {
            table[stalest] = nil
        }
        table[key, default: []].append(now)
        if let count = table[key]?.count, count > 100_000 { table[key]?.removeFirst(count - 100_000) }
    }
}
