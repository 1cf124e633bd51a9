import CMKCore
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
    /// It starts fitted to the process's soft descriptor limit (``fit(descriptorLimit:)``); the
    /// daemon raises that limit at start and fits it again.
    public static let shared: SQLiteHandles = {
        let handles = SQLiteHandles(
            capacity: ProcessInfo.processInfo.environment["CMK_SQLITE_OPEN_DATABASES"].flatMap(Int.init).map { max(1, $0) } ?? 32)
        _ = try? handles.fit(descriptorLimit: DescriptorLimit.current().soft)
        return handles
    }()

    /// The descriptors one open database may hold: the database, its WAL and shared memory for
    /// the writer and for a reader, less what SQLite shares between them, plus a snapshot reader.
    public static let descriptorsPerDatabase = 5

    /// Descriptors left for everything else (vault files, keyrings and objects of directory
    /// accounts, the security log, state files, connections to the vault, the journal).
    public static let descriptorReserve = 128

    /// How many databases may be open at once.
    public var capacity: Int { state.withLock { $0.capacity } }

    /// How many databases were asked for (``capacity`` may be lower to fit the descriptor limit).
    public let requested: Int

    private struct Entry {
        let pool: DatabasePool
        var lastUse: UInt64
    }

    private struct State {
        var capacity: Int
        var entries: [String: Entry] = [:]
        var tick: UInt64 = 0
        var opened = 0
        var shed = 0
    }

    private let state: Mutex<State>
    private let nextKey = Atomic<UInt64>(0)
    private let reads = Atomic<Int>(0)

    public init(capacity: Int) {
        precondition(capacity >= 1, "SQLiteHandles needs room for at least one database")
        requested = capacity
        state = Mutex(State(capacity: capacity))
    }

    /// Databases open now.
    public var openCount: Int { state.withLock { $0.entries.count } }

    /// Databases opened so far (first opens and reopens after eviction).
    public var openings: Int { state.withLock { $0.opened } }

    /// Read-only connections opened so far by drivers of this set (``SQLiteReadConnection``: the
    /// schema check when a driver opens, keyring reads); each is closed when its read ends.
    public var readOpenings: Int { reads.load(ordering: .relaxed) }

    func countReadOpening() { reads.add(1, ordering: .relaxed) }

    /// How often the open databases were let go because the process ran out of descriptors.
    public var sheddings: Int { state.withLock { $0.shed } }

    /// A key for one driver instance, unique in this process. (Not a `UUID`: Foundation makes
    /// those from /dev/urandom and returns all zeros when no descriptor is left.)
    func uniqueKey(_ path: String) -> String {
        "\(path)#\(nextKey.add(1, ordering: .relaxed).newValue)"
    }

    /// Sets how many databases may stay open; closes the least recently used beyond it.
    public func limit(to capacity: Int) {
        precondition(capacity >= 1, "SQLiteHandles needs room for at least one database")
        var evicted: [DatabasePool] = []
        state.withLock { state in
            state.capacity = capacity
            evicted = Self.evict(&state)
        }
        evicted.removeAll()
    }

    /// Fits ``capacity`` to a soft descriptor limit: ``requested`` databases, or fewer so that
    /// each may hold ``descriptorsPerDatabase`` descriptors and ``descriptorReserve`` stay for the
    /// rest. Returns true when it had to keep fewer than ``requested``. Throws (and keeps one
    /// database open at a time) when the limit leaves no room for one database.
    @discardableResult
    public func fit(descriptorLimit soft: Int) throws(StorageError) -> Bool {
        let room = (soft - Self.descriptorReserve) / Self.descriptorsPerDatabase
        limit(to: max(1, min(requested, room)))
        guard room >= 1 else {
            throw StorageError(.misconfigured, "the open-file limit (RLIMIT_NOFILE) is \(soft) descriptors; SQLite accounts need at least "
                + "\(Self.descriptorReserve + Self.descriptorsPerDatabase): raise LimitNOFILE= of the service (docs/systemd.md)")
        }
        return room < requested
    }

    /// Closes every open database (each as soon as no operation in flight holds it), so that
    /// their descriptors are free again; they reopen on next use. The limit was reached with
    /// that many open, so ``capacity`` drops to half of them. Returns how many were let go.
    @discardableResult
    public func shed() -> Int {
        var released: [DatabasePool] = []
        state.withLock { state in
            released = state.entries.values.map(\.pool)
            state.entries.removeAll()
            guard !released.isEmpty else { return }
            state.shed += 1
            // The limit was reached with this many open: keep at most half as many from now on.
            if released.count >= 2 { state.capacity = min(state.capacity, released.count / 2) }
        }
        let count = released.count
        released.removeAll()
        // GRDB closes a pool's connections on their own queues: wait briefly (at most 200 ms)
        // until descriptors are free again.
        for _ in 0..<20 where DescriptorLimit.isExhausted(needing: 16) { usleep(10_000) }
        return count
    }

    /// Runs `body`; when it fails because the process is out of descriptors, lets go of the open
    /// databases (``shed()``) and runs it once more. A second failure that is still a descriptor
    /// shortage says so (``DescriptorExhaustion``), naming `what` was attempted.
    func relievingDescriptors<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch where shedOutOfDescriptors(error) {
            do { return try body() } catch { throw named(error, what) }
        }
    }

    /// ``relievingDescriptors(_:_:)`` for an asynchronous `body`.
    func relievingDescriptors<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch where shedOutOfDescriptors(error) {
            do { return try await body() } catch { throw named(error, what) }
        }
    }

    /// Whether `error` may be a descriptor shortage; if so, first lets go of the open databases.
    /// SQLite reports a shortage only as SQLITE_CANTOPEN, without the errno, and by the time it
    /// is seen other operations may have freed descriptors, so every SQLITE_CANTOPEN counts: a
    /// needless shed costs reopening databases (about 0.7 ms each), a missed one a failed account.
    private func shedOutOfDescriptors(_ error: any Error) -> Bool {
        guard DescriptorExhaustion.isPresent(in: error) || Self.cannotOpen(error) else { return false }
        shed()
        return true
    }

    /// A failure after shedding: named as a descriptor shortage when it still is one.
    private func named(_ error: any Error, _ what: String) -> any Error {
        guard DescriptorExhaustion.isPresent(in: error) || (Self.cannotOpen(error) && DescriptorLimit.isExhausted(needing: 16)) else { return error }
        return StorageError(.io, "\(what) failed: \(DescriptorExhaustion.remedy)", underlying: (error as? StorageError)?.underlying ?? error)
    }

    private static func cannotOpen(_ error: any Error) -> Bool {
        let code = (error as? DatabaseError)?.resultCode ?? ((error as? StorageError)?.underlying as? DatabaseError)?.resultCode
        return code == .SQLITE_CANTOPEN
    }

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
            evicted = Self.evict(&state)
            return fresh
        }
        evicted.removeAll()  // released outside the lock: the last reference closes the connections
        return pool
    }

    /// Removes the least recently used entries beyond the capacity; returns their pools.
    private static func evict(_ state: inout State) -> [DatabasePool] {
        var evicted: [DatabasePool] = []
        while state.entries.count > state.capacity, let oldest = state.entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            evicted.append(oldest.value.pool)
            state.entries[oldest.key] = nil
        }
        return evicted
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
