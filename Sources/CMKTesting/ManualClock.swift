import CMKCore
import Foundation
import Synchronization

/// A clock that only moves when a test moves it.
public final class ManualClock: WallClock {
    private let current: Mutex<Date>

    /// Starts at `start` (default: 2026-01-01T00:00:00Z, so tests are reproducible).
    public init(_ start: Date = Date(timeIntervalSince1970: 1_767_225_600)) {
        current = Mutex(start)
    }

    public func now() -> Date { current.withLock { $0 } }

    /// Moves the clock forward.
    public func advance(by duration: Duration) {
        current.withLock { $0 = $0.addingTimeInterval(duration.timeInterval) }
    }

    /// Sets the clock to an instant.
    public func set(_ date: Date) {
        current.withLock { $0 = date }
    }
}
