import Foundation

/// Runs `body` until it succeeds, throws an error that `isTransient` rejects, or `timeout` has
/// passed since the first attempt (then the last error is thrown). Between attempts it sleeps
/// 1 ms, doubling up to 50 ms.
///
/// For the one place SQLite's busy handler does not help: switching a new database to WAL mode.
/// Two connections that open the same fresh file at once may deadlock on the upgrade from a shared
/// to an exclusive lock, and SQLite then answers `SQLITE_BUSY` at once, without waiting, to one of
/// them. Opening again after the other has finished succeeds.
public func retryWhileTransient<T>(for timeout: TimeInterval, isTransient: (any Error) -> Bool, _ body: () throws -> T) throws -> T {
    let deadline = Date().addingTimeInterval(timeout)
    var pause: useconds_t = 1_000
    while true {
        do {
            return try body()
        } catch where isTransient(error) && Date() < deadline {
            usleep(pause)
            pause = min(pause * 2, 50_000)
        }
    }
}
