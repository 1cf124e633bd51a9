import CMKCore
import CMKSQLiteStorage
import Foundation
import Glibc
import GRDB
import Testing

@Suite("SQLite storage driver")
struct SQLiteStorageDriverTests {
    @Test("runs in WAL mode, synchronous FULL, with a 0600 database file")
    func walAndMode() async throws {
        let root = try TemporaryDirectory()
        let path = root.path + "/acct.sqlite"
        var driver: SQLiteStorageDriver? = try SQLiteStorageDriver(path: path, account: "acct")
        try await driver!.replaceKeyring(sampleKeyring("acct", generation: 1), expectedGeneration: nil)
        try await put(driver!, "a/b", Data(repeating: 7, count: 3 << 20))
        #expect(try await driver!.statistics().journalMode == "wal")
        #expect(try await driver!.statistics().synchronous == 2, "commits are synced (FULL)")
        #expect(try await driver!.statistics().chunks == 3, "3 MiB are stored as three 1 MiB rows")
        #expect(mode(path) == 0o600)
        for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            #expect(mode(path + suffix) == 0o600, "\(suffix) file mode")
        }
        // WAL is persistent: the header's read/write format versions (bytes 18, 19) are 2. Read
        // it only after closing the driver: closing our own descriptor would drop SQLite's locks.
        driver = nil
        let contents = FileManager.default.contents(atPath: path) ?? Data()
        #expect(Array(contents.prefix(20).suffix(2)) == [2, 2])
    }

    @Test("many accounts share a bounded set of open databases: least recently used closed, reopened on use, readers unaffected")
    func boundedOpenDatabases() async throws {
        let root = try TemporaryDirectory()
        let handles = SQLiteHandles(capacity: 4)
        let descriptorsBefore = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
        var drivers: [SQLiteStorageDriver] = []
        for index in 0..<40 {
            let driver = try SQLiteStorageDriver(path: root.path + "/a\(index).sqlite", account: "a\(index)", handles: handles)
            try await driver.replaceKeyring(sampleKeyring("a\(index)", generation: 1), expectedGeneration: nil)
            drivers.append(driver)
            #expect(handles.openCount <= 4)
        }
        try await put(drivers[0], "kept", Data(repeating: 9, count: 2 << 20))
        let reader = try await drivers[0].openObject(try ObjectName("kept"))
        // Every other account is used after the reader opened, so account 0's pool is closed.
        for (index, driver) in drivers.enumerated().dropFirst() {
            #expect(try await driver.readKeyring()?.account == "a\(index)")
        }
        #expect(handles.openCount == 4)
        #expect(handles.openings > 40, "evicted databases were reopened (\(handles.openings) openings)")
        let descriptorsAfter = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
        #expect(descriptorsAfter - descriptorsBefore < 40, "\(descriptorsAfter - descriptorsBefore) descriptors held for 40 accounts")
        var read = Data()
        while let chunk = try await reader.next() { read.append(chunk) }
        #expect(read == Data(repeating: 9, count: 2 << 20), "a reader keeps its snapshot after its pool was closed")
        await reader.close()
        #expect(try await get(drivers[0], "kept") == Data(repeating: 9, count: 2 << 20))
        #expect(try await drivers[0].readKeyring()?.generation == 1)
    }

    @Test("refuses a database file others can access, naming path, mode and fix")
    func unsafeFile() throws {
        let root = try TemporaryDirectory()
        let path = root.path + "/acct.sqlite"
        _ = try SQLiteStorageDriver(path: path, account: "acct")
        chmod(path, 0o644)
        let error = #expect(throws: StorageError.self) { try SQLiteStorageDriver(path: path, account: "acct") }
        #expect(error?.code == .permissions)
        #expect(error?.reason.contains(path) == true)
        #expect(error?.reason.contains("0644") == true)
        #expect(error?.reason.contains("chmod 600") == true)
    }

    @Test("a file that is not a database is reported corrupt")
    func notADatabase() throws {
        let root = try TemporaryDirectory()
        let path = root.path + "/acct.sqlite"
        _ = FileManager.default.createFile(atPath: path, contents: Data(repeating: 0x42, count: 4096), attributes: [.posixPermissions: 0o600])
        let error = #expect(throws: StorageError.self) { try SQLiteStorageDriver(path: path, account: "acct") }
        #expect(error?.code == .corrupt)
    }

    @Test("opening removes staged writes left by a crash but not a live writer's")
    func staleStaging() async throws {
        let root = try TemporaryDirectory()
        let path = root.path + "/acct.sqlite"
        var crashed: SQLiteStorageDriver? = try SQLiteStorageDriver(path: path, account: "acct")
        try await put(crashed!, "kept", Data("committed".utf8))
        let orphan = try await crashed!.makeObjectWriter(try ObjectName("orphan"))
        try await orphan.write(Data(repeating: 1, count: (2 << 20) + 5))
        #expect(try await crashed!.statistics().stagedWrites == 1)
        #expect(try await crashed!.statistics().chunks == 3)
        crashed = nil // the writer is never committed or aborted: as after a crash

        let live = try SQLiteStorageDriver(path: path, account: "acct")
        let writer = try await live.makeObjectWriter(try ObjectName("live"))
        try await writer.write(Data("in flight".utf8))
        // A default open keeps recent staged writes (they may belong to a live process).
        _ = try SQLiteStorageDriver(path: path, account: "acct")
        #expect(try await live.statistics().stagedWrites == 2)

        try await Task.sleep(for: .milliseconds(50))
        let reopened = try SQLiteStorageDriver(path: path, account: "acct", staleStagingAge: 0.01)
        let statistics = try await reopened.statistics()
        #expect(statistics.stagedWrites == 0)
        #expect(statistics.chunks == 1, "only the committed object's chunk remains")
        #expect(try await get(reopened, "kept") == Data("committed".utf8))
        // The writer whose staging was removed fails cleanly instead of committing half an object.
        #expect(await storageError { _ = try await writer.commit(.always) }?.code == .io)
        #expect(try await reopened.listObjects() == [try ObjectName("kept")])
    }

    @Test("corrupt keyring JSON is refused and never overwritten")
    func corruptKeyring() async throws {
        let root = try TemporaryDirectory()
        let path = root.path + "/acct.sqlite"
        let driver = try SQLiteStorageDriver(path: path, account: "acct")
        try await driver.replaceKeyring(sampleKeyring("acct", generation: 1), expectedGeneration: nil)
        let garbage = Data("{\"generation\": 1, broken".utf8)
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in try db.execute(sql: "UPDATE keyring SET json = ?", arguments: [garbage]) }
        let read = await storageError { _ = try await driver.readKeyring() }
        #expect(read?.code == .corrupt)
        #expect(read?.reason.contains(path) == true)
        #expect(await storageError { try await driver.replaceKeyring(sampleKeyring("acct", generation: 2), expectedGeneration: 1) }?.code == .corrupt)
        let stored = try await queue.read { db in try Data.fetchOne(db, sql: "SELECT json FROM keyring") }
        #expect(stored == garbage)
    }

    @Test("a compare-and-swap waits for another process's write lock and gives up after the busy timeout")
    func crossProcessLock() async throws {
        let root = try TemporaryDirectory()
        let path = root.path + "/acct.sqlite"
        let patient = try SQLiteStorageDriver(path: path, account: "acct", busyTimeout: 20)
        let impatient = try SQLiteStorageDriver(path: path, account: "acct", busyTimeout: 0.3)
        let first = sampleKeyring("acct", generation: 1)
        try await patient.replaceKeyring(first, expectedGeneration: nil)

        let holder = try HelperProcess(python: """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute('BEGIN IMMEDIATE')
            print('locked', flush=True)
            sys.stdin.read()
            c.execute('COMMIT')
            """, [path])
        defer { holder.stop() }
        let refused = await storageError { try await impatient.replaceKeyring(sampleKeyring("acct", generation: 2), expectedGeneration: 1) }
        #expect(refused?.code == .io)
        #expect(try await patient.readKeyring() == first)

        let second = sampleKeyring("acct", generation: 2)
        let waiting = Task {
            try await patient.replaceKeyring(second, expectedGeneration: 1)
            return ContinuousClock.now
        }
        try await Task.sleep(for: .milliseconds(600))
        let releasedAt = ContinuousClock.now
        holder.release()
        let finishedAt = try await waiting.value
        #expect(finishedAt >= releasedAt, "the CAS must wait until the other process releases its lock")
        #expect(try await impatient.readKeyring() == second)
    }
}

@Suite("SQLite storage driver: kept keyrings", .serialized)
struct SQLiteKeyringCacheTests {
    @Test("an unchanged keyring is read without opening the database again")
    func keptWithoutOpening() async throws {
        let root = try TemporaryDirectory()
        let handles = SQLiteHandles(capacity: 1)
        let a = try SQLiteStorageDriver(path: root.path + "/a.sqlite", account: "a", handles: handles)
        let b = try SQLiteStorageDriver(path: root.path + "/b.sqlite", account: "b", handles: handles)
        try await a.replaceKeyring(sampleKeyring("a", generation: 1), expectedGeneration: nil)
        try await b.replaceKeyring(sampleKeyring("b", generation: 1), expectedGeneration: nil)
        try await settleFiles()
        // One slot: each read evicts the other database. The first reads open it and keep the
        // keyring; closing an evicted database writes nothing (no checkpoint on close).
        #expect(try await a.readKeyring()?.account == "a")
        #expect(try await b.readKeyring()?.account == "b")
        let openings = handles.openings + handles.readOpenings
        for _ in 0..<5 {
            #expect(try await a.readKeyring()?.generation == 1)
            #expect(try await b.readKeyring()?.generation == 1)
        }
        #expect(handles.openings + handles.readOpenings == openings, "\(handles.openings + handles.readOpenings - openings) reopenings for unchanged keyrings")
    }

    /// Checkpoints the WAL into the database file through a connection of its own.
    private func checkpoint(_ path: String, _ mode: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(\(mode))") }
    }

    private func walSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? Int) ?? -1
    }

    @Test("a keyring changed through another connection is seen at once: WAL commit, checkpoint, WAL restart")
    func changesElsewhereAreSeen() async throws {
        let root = try TemporaryDirectory()
        let path = root.path + "/acct.sqlite"
        let mine = try SQLiteStorageDriver(path: path, account: "acct", handles: SQLiteHandles(capacity: 4))
        try await mine.replaceKeyring(sampleKeyring("acct", generation: 1), expectedGeneration: nil)
        try await settleFiles()
        #expect(try await mine.readKeyring()?.generation == 1)
        #expect(try await mine.readKeyring()?.generation == 1)
        // Another process's writer: its own pool on the same file.
        let other = try SQLiteStorageDriver(path: path, account: "acct", handles: SQLiteHandles(capacity: 4))
        try await other.replaceKeyring(sampleKeyring("acct", generation: 2), expectedGeneration: 1)
        #expect(try await mine.readKeyring()?.generation == 2, "a commit appended to the WAL")

        try await settleFiles()
        #expect(try await mine.readKeyring()?.generation == 2)
        try checkpoint(path, "TRUNCATE")
        #expect(walSize(path) == 0)
        try await other.replaceKeyring(sampleKeyring("acct", generation: 3), expectedGeneration: 2)
        #expect(try await mine.readKeyring()?.generation == 3, "a commit after the WAL was truncated")

        // RESTART: the next commit overwrites the WAL from its start, so its size need not change.
        try await settleFiles()
        #expect(try await mine.readKeyring()?.generation == 3)
        try checkpoint(path, "RESTART")
        let sizeBefore = walSize(path)
        try await other.replaceKeyring(sampleKeyring("acct", generation: 4), expectedGeneration: 3)
        #expect(walSize(path) <= sizeBefore, "the commit reused the WAL (\(sizeBefore) -> \(walSize(path)) bytes)")
        #expect(try await mine.readKeyring()?.generation == 4, "a commit that rewrote the WAL in place")
    }
}

extension SQLiteKeyringCacheTests {
    @Test("opening a driver on an existing database and closing it change neither the database nor its WAL")
    func openAndCloseWriteNothing() async throws {
        let root = try TemporaryDirectory()
        let path = root.path + "/a.sqlite"
        var driver: SQLiteStorageDriver? = try SQLiteStorageDriver(path: path, account: "a", handles: SQLiteHandles(capacity: 1))
        try await driver!.replaceKeyring(sampleKeyring("a", generation: 1), expectedGeneration: nil)
        driver = nil
        func files() throws -> [FileIdentity?] { [try FileIdentity.of(path), try FileIdentity.of(path + "-wal")?.ignoringChangeTime] }
        let before = try files()
        #expect(before[1] != nil, "the WAL stays after the last connection closed")
        driver = try SQLiteStorageDriver(path: path, account: "a", handles: SQLiteHandles(capacity: 1))
        #expect(try await driver!.readKeyring()?.generation == 1)
        #expect(try files() == before, "opening and reading wrote to the files")
        driver = nil
        #expect(try files() == before, "closing wrote to the files (a checkpoint on close?)")
    }
}
