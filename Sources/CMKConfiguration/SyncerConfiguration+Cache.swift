extension SyncerConfiguration {
    /// `cache`: the in-memory cache of unwrapped data keys (`CMKEnvelope.DEKCache`).
    public struct Cache: Sendable, Hashable {
        /// `cache.ttl` (duration 1s–1h, default 1h, not secret): how long an unwrapped data key
        /// stays in memory. With `sync.suspend: after-cache-ttl` it bounds how long data stays
        /// readable after the key is pulled.
        public var ttl: Duration
        /// `cache.capacity` (1–1000000, default 10000, not secret): the most data keys held.
        public var capacity: Int
        /// `cache.read-wait` (duration 0s–10m, default 10s, not secret): how long a reader
        /// (`cmkctl data get/put/sweep`) whose data key is not cached waits for a throttling vault
        /// before it gives up with `vault.throttled`. The sync pass keeps its longer patience.
        public var readWait: Duration

        public init(ttl: Duration = .seconds(3600), capacity: Int = 10_000, readWait: Duration = .seconds(10)) {
            self.ttl = ttl
            self.capacity = capacity
            self.readWait = readWait
        }
    }
}
