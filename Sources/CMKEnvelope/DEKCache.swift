import CMKCore
import Foundation
import Synchronization

/// Unwrapped DEKs in memory for at most a TTL (SPEC §6).
///
/// - Entries expire `ttl` after they were unwrapped, whatever their use.
/// - At most `capacity` entries; beyond that the oldest entry is evicted.
/// - Evicted, expired and purged entries are zeroed at once. Callers receive their own copy of
///   the key for one operation, so zeroing a cache entry never corrupts an operation in flight.
/// - ``purge(account:)`` drops an account's keys immediately (suspension).
public final class DEKCache: Sendable {
    /// Cache settings.
    public struct Configuration: Hashable, Sendable {
        /// The longest time an unwrapped DEK stays in memory. Default 1 hour; allowed 1 s to 1 hour.
        public var ttl: Duration
        /// The most DEKs held at once. Default 10,000.
        public var capacity: Int

        public static let maximumTTL: Duration = .seconds(3600)

        public init(ttl: Duration = .seconds(3600), capacity: Int = 10_000) throws(EnvelopeError) {
            guard ttl >= .seconds(1), ttl <= Self.maximumTTL else {
                throw EnvelopeError(.invalidParameter, "DEK cache TTL \(ttl) is outside 1 s ... 1 h")
            }
            guard capacity >= 1 else { throw EnvelopeError(.invalidParameter, "DEK cache capacity must be at least 1") }
            self.ttl = ttl
            self.capacity = capacity
        }
    }

    /// Counters since the cache was created.
    public struct Statistics: Hashable, Sendable, Codable {
        public var hits = 0
        public var misses = 0
        public var evictions = 0
        public var entries = 0
    }

    struct Key: Hashable, Sendable {
        var account: String
        var dek: DEKID
    }

    private struct Entry: Sendable {
        var key: SecretBytes
        var expires: Date
    }

    private struct State: Sendable {
        var entries: [Key: Entry] = [:]
        var order: [Key] = []
        var head = 0
        var statistics = Statistics()
    }

    public let configuration: Configuration
    private let clock: any WallClock
    private let state = Mutex(State())

    public init(configuration: Configuration, clock: any WallClock = SystemWallClock()) {
        self.configuration = configuration
        self.clock = clock
    }

    /// A copy of the cached DEK, or nil (counted as a miss) if absent or expired.
    public func get(account: String, dek: DEKID) -> SecretBytes? {
        let now = clock.now()
        return state.withLock { state in
            let key = Key(account: account, dek: dek)
            guard let entry = state.entries[key] else {
                state.statistics.misses += 1
                return nil
            }
            guard now < entry.expires else {
                entry.key.zeroize()
                state.entries[key] = nil
                state.statistics.evictions += 1
                state.statistics.misses += 1
                state.statistics.entries = state.entries.count
                return nil
            }
            state.statistics.hits += 1
            return entry.key.withUnsafeBytes { SecretBytes(copying: $0) }
        }
    }

    /// Stores a copy of `key`, evicting the oldest entries beyond capacity.
    public func insert(_ key: SecretBytes, account: String, dek: DEKID) {
        let expires = clock.now().addingTimeInterval(configuration.ttl.timeInterval)
        let copy = key.withUnsafeBytes { SecretBytes(copying: $0) }
        state.withLock { state in
            let cacheKey = Key(account: account, dek: dek)
            if let old = state.entries.updateValue(Entry(key: copy, expires: expires), forKey: cacheKey) {
                old.key.zeroize()
            } else {
                state.order.append(cacheKey)
            }
            while state.entries.count > configuration.capacity, state.head < state.order.count {
                let victim = state.order[state.head]
                state.head += 1
                if let entry = state.entries.removeValue(forKey: victim) {
                    entry.key.zeroize()
                    state.statistics.evictions += 1
                }
            }
            Self.compact(&state)
            state.statistics.entries = state.entries.count
        }
    }

    /// Drops and zeroes every DEK of `account` at once. Returns how many were dropped.
    @discardableResult
    public func purge(account: String) -> Int {
        state.withLock { state in
            let victims = state.entries.keys.filter { $0.account == account }
            for victim in victims {
                state.entries.removeValue(forKey: victim)?.key.zeroize()
            }
            state.order.removeAll { $0.account == account }
            state.head = Swift.min(state.head, state.order.count)
            state.statistics.evictions += victims.count
            state.statistics.entries = state.entries.count
            return victims.count
        }
    }

    /// Drops and zeroes every entry whose TTL has passed. Returns how many were dropped.
    @discardableResult
    public func evictExpired() -> Int {
        let now = clock.now()
        return state.withLock { state in
            let victims = state.entries.filter { $0.value.expires <= now }.map(\.key)
            for victim in victims { state.entries.removeValue(forKey: victim)?.key.zeroize() }
            state.statistics.evictions += victims.count
            state.statistics.entries = state.entries.count
            return victims.count
        }
    }

    /// The counters.
    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// The cached buffer itself, for tests that check zeroing. Not for production use.
    func _entryForTesting(account: String, dek: DEKID) -> SecretBytes? {
        state.withLock { $0.entries[Key(account: account, dek: dek)]?.key }
    }

    private static func compact(_ state: inout State) {
        guard state.head > 1024, state.head * 2 > state.order.count else { return }
        state.order.removeFirst(state.head)
        state.head = 0
        state.order.removeAll { state.entries[$0] == nil }
    }
}
