/// The running sync pass's pulse, seen by everything the pass awaits (a task-local value, so it
/// reaches the vault provider, the throttle and the pass's own retries without being passed down).
///
/// The daemon's watchdog measures the loop, not the vault: a pass waiting on a slow vault is alive
/// as long as each step ends within its own bound. So every HTTP exchange ``beat()``s when it
/// starts and when it ends (one exchange is bounded by `vault.azure.timeout`), and every back-off
/// sleeps through ``sleep(for:)``, which beats every slice. A loop that is really stuck (a blocked
/// thread, a deadlock) beats no more, and the watchdog stops pinging.
///
/// The same pulse carries the stop: once the daemon is stopping, ``sleep(for:)`` ends within a
/// slice and throws `CancellationError`, so no back-off outlives a SIGTERM and no retry follows it.
///
/// Outside a pass (no pulse bound, as in `cmkctl`), ``beat()`` does nothing and ``sleep(for:)``
/// is `Task.sleep`.
public struct Heartbeat: Sendable {
    /// Marks progress.
    public let beat: @Sendable () -> Void
    /// True once the daemon is stopping.
    public let stopRequested: @Sendable () -> Bool

    public init(beat: @escaping @Sendable () -> Void, stopRequested: @escaping @Sendable () -> Bool) {
        self.beat = beat
        self.stopRequested = stopRequested
    }

    /// The pulse of the pass this task works for, if any.
    @TaskLocal public static var current: Heartbeat?

    /// The longest stretch a sleep goes without a beat and without looking at the stop.
    public static let slice: Duration = .milliseconds(200)

    /// Marks progress of the current pass, if there is one.
    public static func beat() { current?.beat() }

    /// Whether the daemon running the current pass is stopping.
    public static var isStopping: Bool { current?.stopRequested() ?? false }

    /// Sleeps for `duration` in slices of at most ``slice``, beating after each; throws
    /// `CancellationError` as soon as the daemon is stopping or the task is cancelled.
    public static func sleep(for duration: Duration) async throws {
        guard let pulse = current else { return try await Task.sleep(for: duration) }
        let end = ContinuousClock.now + duration
        while true {
            if pulse.stopRequested() { throw CancellationError() }
            let remaining = end - ContinuousClock.now
            guard remaining > .zero else { return }
            try await Task.sleep(for: min(remaining, slice))
            pulse.beat()
        }
    }
}
