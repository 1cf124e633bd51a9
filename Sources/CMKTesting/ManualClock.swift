import CMKCore
import Foundation
import Synchronization

/// A clock that only moves when a test moves it: a wall clock and a monotonic clock in one.
/// ``advance(by:)`` is time passing (both move); ``set(_:)`` is a step of the wall clock alone,
/// as `date -s` or an NTP step would make it.
public final class ManualClock: WallClock, MonotonicClock {
    private let current: Mutex<(wall: Date, elapsed: Duration)>

    /// Starts at `start` (default: 2026-01-01T00:00:00Z, so tests are reproducible).
    public init(_ start: Date = Date(timeIntervalSince1970: 1_767_225_600)) {
        current = Mutex((start, .zero))
    }

    public func now() -> Date { current.withLock { $0.wall } }

    public func elapsed() -> Duration { current.withLock { $0.elapsed } }

    /// Lets time pass: both clocks move forward.
    public func advance(by duration: Duration) {
        current.withLock {
            $0.wall = $0.wall.addingTimeInterval(duration.timeInterval)
            $0.elapsed += duration
        }
    }

    /// Steps the wall clock to an instant; the monotonic clock does not move.
    public func set(_ date: Date) {
        current.withLock { $0.wall = date }
    }
}
