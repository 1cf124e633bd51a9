extension SyncerConfiguration {
    /// `sync`: when passes run and how they behave.
    public struct Sync: Sendable, Hashable {
        /// `sync.jitter`: how much random delay is added to each interval so a fleet of hosts does
        /// not reach the vault at the same second.
        public enum Jitter: Sendable, Hashable {
            /// A fraction of the interval, written as a percentage from `0%` to `50%`.
            case fraction(Double)
            /// A fixed upper bound, written as a duration shorter than the interval.
            case fixed(Duration)

            /// The largest delay to add to a pass scheduled `interval` after the previous one.
            public func maximum(for interval: Duration) -> Duration {
                switch self {
                case .fraction(let fraction): return interval * fraction
                case .fixed(let duration): return duration
                }
            }
        }

        /// `sync.suspend`: when accounts stop serving after the key is pulled.
        public enum SuspendPolicy: String, Sendable, Hashable, CaseIterable {
            /// `immediate`: suspend every account as soon as the pull is seen (the default).
            case immediate
            /// `after-cache-ttl`: keep serving from cached data keys until they expire.
            case afterCacheTTL = "after-cache-ttl"
        }

        /// `sync.retry`: backoff for calls to the vault that fail with an outage.
        public struct Retry: Sendable, Hashable {
            /// `sync.retry.attempts` (1–10, default 5): tries per call, the first included.
            public var attempts: Int
            /// `sync.retry.initial-delay` (duration 10ms–1h, default 1s): the first backoff delay.
            public var initialDelay: Duration
            /// `sync.retry.max-delay` (duration from initial-delay to 1h, default 16s): the cap on
            /// the doubling delay. A `Retry-After` from the vault takes precedence.
            public var maxDelay: Duration

            public init(attempts: Int = 5, initialDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(16)) {
                self.attempts = attempts
                self.initialDelay = initialDelay
                self.maxDelay = maxDelay
            }
        }

        /// `sync.interval` (duration 1m–24h, default 15m): the time between passes.
        public var interval: Duration
        /// `sync.jitter` (percentage 0%–50% or a duration shorter than the interval, default 10%).
        public var jitter: Jitter
        /// `sync.pulled-poll-interval` (duration from 10s to the interval, default 1m): the time
        /// between passes while the key is pulled, to notice a restore quickly.
        public var pulledPollInterval: Duration
        /// `sync.probe-interval` (duration from 10s to the interval, or `off`; default 1m, jittered
        /// like the pass): how often the key-state probe reads the vault snapshot alone (one call, no
        /// account I/O) and starts a pass at once when something a pass acts on has changed. nil: off.
        public var probeInterval: Duration?
        /// `sync.suspend` (`immediate | after-cache-ttl`, default `immediate`).
        public var suspend: SuspendPolicy
        /// `sync.concurrency` (1–64, default 4): accounts synchronised at the same time.
        public var concurrency: Int
        /// `sync.backup-retention` (duration 0s–3650d, default 14d): how long a key version no
        /// account uses any more stays "not yet safe to disable", because backups may still hold
        /// data keys wrapped under it.
        public var backupRetention: Duration
        /// `sync.expiry-warning` (duration 0s–365d, default 30d; 0s turns it off): a current key
        /// version that expires within this is named in the status line and warned about in the
        /// journal once (the same window as Azure Key Vault's default Notify action, P30D).
        public var expiryWarning: Duration
        /// `sync.start-timeout` (duration 1s–1h, default 30s): `READY=1` is sent at the latest
        /// after this, even if the first pass is still running. Keep it below the unit's
        /// `TimeoutStartSec=`.
        public var startTimeout: Duration
        /// `sync.retry` (mapping, optional).
        public var retry: Retry
        /// `sync.instance-name` (1-64 bytes of letters, digits and `. _ - : @`; default the host
        /// name, plus `@<instance>` under a templated unit `cmk-syncer@<instance>.service`; not
        /// secret): names this daemon in the leases it takes and in the status of the accounts it
        /// handles, where several daemons serve the same accounts (SPEC §12). nil: the default.
        public var instanceName: String?

        public init(interval: Duration = .seconds(15 * 60), jitter: Jitter = .fraction(0.1),
                    pulledPollInterval: Duration = .seconds(60), suspend: SuspendPolicy = .immediate,
                    concurrency: Int = 4, backupRetention: Duration = .seconds(14 * 86_400), expiryWarning: Duration = .seconds(30 * 86_400),
                    startTimeout: Duration = .seconds(30), retry: Retry = Retry(), probeInterval: Duration? = .seconds(60)) {
            self.interval = interval
            self.jitter = jitter
            self.pulledPollInterval = pulledPollInterval
            self.probeInterval = probeInterval
            self.suspend = suspend
            self.concurrency = concurrency
            self.backupRetention = backupRetention
            self.expiryWarning = expiryWarning
            self.startTimeout = startTimeout
            self.retry = retry
        }
    }
}
