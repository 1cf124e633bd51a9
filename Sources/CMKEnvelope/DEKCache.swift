import CMKCore
import Foundation
import Synchronization

/// Unwrapped DEKs in memory for at most a TTL (SPEC §6).
///
/// - Entries expire `ttl` after they were unwrapped, whatever their use. The TTL is measured on a
///   monotonic clock, so a step of the wall clock (back a year, or forward) neither keeps a DEK
///   longer nor drops it early.
/// - Expired entries are dropped and zeroed by the next ``get(account:dek:)`` or
///   ``insert(_:account:dek:)`` of any key, and by ``evictExpired()``; none is ever served.
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
        /// On the monotonic clock.
        var expires: Duration
        /// Which insertion this is, so that ``State/order`` can tell a stale position.
        var serial: UInt64
    }

    /// Entries in insertion order. Expiry times never decrease along it (a key that is still
    /// cached is not inserted again), so expired entries are always at its head.
    private struct State: Sendable {
        var entries: [Key: Entry] = [:]
        var order: [(key: Key, serial: UInt64)] = []
        var head = 0
        var serial: UInt64 = 0
        var statistics = Statistics()

        /// Whether the position holds the entry it was made for (not a purged or replaced one).
        func isCurrent(_ position: (key: Key, serial: UInt64)) -> Bool { entries[position.key]?.serial == position.serial }
    }

    public let configuration: Configuration
    private let clock: any MonotonicClock
    private let state = Mutex(State())

    /// - Parameter clock: the monotonic clock TTLs are measured on; tests inject a manual one.
    public init(configuration: Configuration, clock: any MonotonicClock = SystemMonotonicClock()) {
        self.configuration = configuration
        self.clock = clock
    }

    /// A copy of the cached DEK, or nil (counted as a miss) if absent or expired.
    public func get(account: String, dek: DEKID) -> SecretBytes? {
        let now = clock.elapsed()
        return state.withLock { state in
            Self.dropExpired(&state, now: now)
            guard let entry = state.entries[Key(account: account, dek: dek)] else {
                state.statistics.misses += 1
                return nil
            }
            state.statistics.hits += 1
            return entry.key.withUnsafeBytes { SecretBytes(copying: $0) }
        }
    }

    /// Stores a copy of `key`, evicting expired entries and the oldest entries beyond capacity.
    /// A key that is still cached keeps its entry and its expiry.
    public func insert(_ key: SecretBytes, account: String, dek: DEKID) {
        let now = clock.elapsed()
        let copy = key.withUnsafeBytes { SecretBytes(copying: $0) }
        state.withLock { state in
            Self.dropExpired(&state, now: now)
            let cacheKey = Key(account: account, dek: dek)
            guard state.entries[cacheKey] == nil else {
                copy.zeroize()
                return
            }
            state.serial += 1
            state.entries[cacheKey] = Entry(key: copy, expires: now + configuration.ttl, serial: state.serial)
            state.order.append((cacheKey, state.serial))
            while state.entries.count > configuration.capacity, state.head < state.order.count {
                let victim = state.order[state.head]
                state.head += 1
                if state.isCurrent(victim), let entry = state.entries.removeValue(forKey: victim.key) {
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
            // Their positions in the order are now stale and skipped.
            Self.compact(&state)
            state.statistics.evictions += victims.count
            state.statistics.entries = state.entries.count
            return victims.count
        }
    }

    /// Drops and zeroes every entry whose TTL has passed. Returns how many were dropped.
    @discardableResult
    public func evictExpired() -> Int {
        let now = clock.elapsed()
        return state.withLock { Self.dropExpired(&$0, now: now) }
    }

    /// The counters.
    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// The cached buffer itself, for tests that check zeroing. Not for production use.
    func _entryForTesting(account: String, dek: DEKID) -> SecretBytes? {
        state.withLock { $0.entries[Key(account: account, dek: dek)]?.key }
    }

    /// Drops and zeroes the entries at the head of the order whose TTL has passed.
    @discardableResult
    private static func dropExpired(_ state: inout State, now: Duration) -> Int {
        var dropped = 0
        while state.head < state.order.count {
            let position = state.order[state.head]
            if state.isCurrent(position) {
                guard let entry = state.entries[position.key], entry.expires <= now else { break }
                state.entries.removeValue(forKey: position.key)
                entry.key.zeroize()
                dropped += 1
            }
            state.head += 1
        }
        if dropped > 0 {
            state.statistics.evictions += dropped
            state.statistics.entries = state.entries.count
            compact(&state)
        }
        return dropped
    }

    private static func compact(_ state: inout State) {
        guard state.head > 1024, state.head * 2 > state.order.count else { return }
        state.order.removeFirst(state.head)
        state.head = 0
        let entries = state.entries
        state.order.removeAll { entries[$0.key]?.serial != $0.serial }
    }
}
