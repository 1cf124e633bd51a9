/// The source of elapsed time for every TTL and timeout: it never steps when the wall clock does
/// (`date -s`, an NTP step, a wrong RTC at boot), so a TTL of ten seconds lasts ten seconds
/// whatever "now" says. Tests inject ``MonotonicClock`` conformances they move by hand.
public protocol MonotonicClock: Sendable {
    /// Time since an origin fixed for the life of the process; never decreases.
    func elapsed() -> Duration
}

/// The system's monotonic clock (`ContinuousClock`: `CLOCK_BOOTTIME` on Linux, which also counts
/// time spent suspended, so a TTL never outlives its length across a suspend).
public struct SystemMonotonicClock: MonotonicClock {
    private static let origin = ContinuousClock.now

    public init() {}

    public func elapsed() -> Duration { ContinuousClock.now - Self.origin }
}
