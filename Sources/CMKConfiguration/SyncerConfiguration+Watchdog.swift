import Foundation

extension SyncerConfiguration {
    /// `WatchdogSec=` of the shipped unit (systemd/cmk-syncer.service).
    public static let shippedWatchdogInterval: Duration = .seconds(60)

    /// The watchdog interval systemd announced to this process: `$WATCHDOG_USEC`, unless
    /// `$WATCHDOG_PID` names another process. Nil when there is none.
    public static func watchdogInterval(environment: [String: String], pid: Int32 = getpid()) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let usec = Int64(text), usec > 0 else { return nil }
        if let owner = environment["WATCHDOG_PID"], Int32(owner) != pid { return nil }
        return .microseconds(usec)
    }

    /// Checks the configured timeouts against the systemd watchdog (`WatchdogSec=`, `interval`).
    ///
    /// The daemon's heartbeat measures the loop, not the vault: every back-off and rate-limit wait
    /// beats as it sleeps, and every HTTP exchange with the vault beats when it starts and when it
    /// ends, so `vault.azure.timeout` × (`vault.azure.retries` + 1) plus back-offs may be far longer
    /// than the watchdog interval. What has no beat inside it is one exchange, bounded by
    /// `vault.azure.timeout`; it must end within half the interval (the daemon pings at half the
    /// interval and calls the loop stuck after a whole one without a beat).
    /// - Parameter source: where `interval` came from, for the message.
    public func checkWatchdog(interval: Duration, source: String) throws(ConfigurationError) {
        guard let azure = vault.azure else { return }
        let limit = interval / 2
        guard azure.timeout > limit else { return }
        throw ConfigurationError(
            .invalidValue,
            "\(DurationSyntax.format(azure.timeout)) is longer than half the systemd watchdog interval (\(source): \(DurationSyntax.format(interval))): one request to the vault that hangs for its whole timeout would leave the scheduler loop without a heartbeat for too long and systemd would abort the daemon; set vault.azure.timeout to \(DurationSyntax.format(limit)) or less, or raise WatchdogSec= to at least \(DurationSyntax.format(azure.timeout * 2)) (docs/systemd.md, Watchdog)",
            keyPath: "vault.azure.timeout", file: file)
    }

    /// ``checkWatchdog(interval:source:)`` against the interval systemd announced in
    /// `environment`, or, when there is none, against the shipped unit's `WatchdogSec=60s`
    /// (what `cmk-syncer check-config` checks).
    public func checkWatchdog(environment: [String: String]) throws(ConfigurationError) {
        if let interval = Self.watchdogInterval(environment: environment) {
            try checkWatchdog(interval: interval, source: "WATCHDOG_USEC")
        } else {
            try checkWatchdog(interval: Self.shippedWatchdogInterval, source: "WatchdogSec= of the shipped unit")
        }
    }
}
