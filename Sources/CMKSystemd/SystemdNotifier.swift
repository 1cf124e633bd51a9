import CSystemd
import Foundation

/// Talks to the service manager through the `sd_notify(3)` protocol: readiness, status, reload,
/// stop, watchdog pings and start-timeout extensions. A no-op when `$NOTIFY_SOCKET` is unset.
/// Never blocks for long: a full socket drops status lines at once and state changes after 2 s
/// (`NotifySocket`).
public struct SystemdNotifier: Sendable {
    public init() {}

    /// Whether a service manager listens (`$NOTIFY_SOCKET` is set).
    public var isEnabled: Bool { ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] != nil }

    /// Sends newline-separated `KEY=value` assignments. Returns false if nothing was sent (no
    /// `$NOTIFY_SOCKET`, or its queue stayed full).
    @discardableResult
    public func send(_ assignments: String...) -> Bool {
        guard let address = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] else { return false }
        let essential = assignments.contains { !$0.hasPrefix("STATUS=") }
        return NotifySocket.send(assignments.joined(separator: "\n"), to: address, essential: essential) == .sent
    }

    public func ready(status: String) { send("READY=1", "STATUS=\(status)") }
    public func status(_ line: String) { send("STATUS=\(line)") }
    public func reloading() { send("RELOADING=1", "MONOTONIC_USEC=\(Self.monotonicMicroseconds())") }
    public func stopping(status: String) { send("STOPPING=1", "STATUS=\(status)") }
    public func watchdog() { send("WATCHDOG=1") }
    public func extendTimeout(_ duration: Duration) { send("EXTEND_TIMEOUT_USEC=\(Self.microseconds(duration))") }
    public func errno(_ code: Int32, status: String) { send("ERRNO=\(code)", "STATUS=\(status)") }

    /// The watchdog interval the service manager expects (`WatchdogSec=`), if enabled for this process.
    public func watchdogInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec))
    }

    /// CLOCK_MONOTONIC in microseconds, as systemd expects in `MONOTONIC_USEC`.
    public static func monotonicMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1_000
    }

    static func microseconds(_ duration: Duration) -> Int64 {
        let parts = duration.components
        return parts.seconds * 1_000_000 + parts.attoseconds / 1_000_000_000_000
    }
}
