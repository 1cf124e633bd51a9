import Foundation
import GRDB
import Synchronization

/// The open databases of this process, bounded: each open `DatabasePool` holds at least three file
/// descriptors (database, WAL, shared memory) and about 250 KiB, so 10,000 SQLite accounts kept
/// open at once would run out of descriptors. Drivers borrow their pool from here for each
/// operation; beyond ``capacity`` the least recently used pool is dropped and its connections close
/// once no operation in flight still holds it. A driver reopens its database on next use.
///
/// Closing is safe while another pool of this process has the same file open: SQLite's unix VFS
/// keeps the descriptors of a file with locks held until those locks are released.
public final class SQLiteHandles: Sendable {
    /// The process-wide set, sized by `$CMK_SQLITE_OPEN_DATABASES` (default 32). An open database
    /// costs about five descriptors and 150 KiB. A sync pass works on at most its concurrency
    /// (default 4, at most 64) accounts at once, and kept keyrings spare idle passes any open, so
    /// 32 keeps the daemon's memory low; a process serving many accounts' data at once may raise it.
    public static let shared = SQLiteHandles(
        capacity: ProcessInfo.processInfo.environment["CMK_SQLITE_OPEN_DATABASES"].flatMap(Int.init).map { max(1, $0) } ?? 32)

    /// How many databases may be open at once.
    public let capacity: Int

    private struct Entry {
        let pool: DatabasePool
        var lastUse: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var tick: UInt64 = 0
        var opened = 0
    }

    private let state = Mutex(State())

    public init(capacity: Int) {
        precondition(capacity >= 1, "SQLiteHandles needs room for at least one database")
        self.capacity = capacity
    }

    /// Databases open now.
    public var openCount: Int { state.withLock { $0.entries.count } }

    /// Databases opened so far (first opens and reopens after eviction).
    public var openings: Int { state.withLock { $0.opened } }

    /// The pool for `key`, opened with `open` if it is not open (outside the lock, so a slow open
    /// never blocks other accounts).
    func pool(_ key: String, open: () throws -> DatabasePool) throws -> DatabasePool {
        if let pool = touch(key) { return pool }
        let fresh = try open()
        var evicted: [DatabasePool] = []
        let pool = state.withLock { state -> DatabasePool in
            state.tick += 1
            if let existing = state.entries[key] {
                state.entries[key]?.lastUse = state.tick
                return existing.pool
            }
            state.opened += 1
            state.entries[key] = Entry(pool: fresh, lastUse: state.tick)
            while state.entries.count > capacity, let oldest = state.entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
                evicted.append(oldest.value.pool)
                state.entries[oldest.key] = nil
            }
            return fresh
        }
        evicted.removeAll()  // released outside the lock: the last reference closes the connections
        return pool
    }

    /// Forgets `key`'s pool (its driver is gone).
    func close(_ key: String) {
        let pool = state.withLock { $0.entries.removeValue(forKey: key) }
        _ = pool
    }

    private func touch(_ key: String) -> DatabasePool? {
        state.withLock { state in
            guard state.entries[key] != nil else { return nil }
            state.tick += 1
            state.entries[key]?.lastUse = state.tick
            return state.entries[key]?.pool
        }
    }
}
