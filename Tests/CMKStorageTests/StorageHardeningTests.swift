import CMKCore
import CMKDirectoryStorage
import CMKSQLiteStorage
import Foundation
import Glibc
import GRDB
import Testing

/// Issue 14: files others could write are refused wherever they hold account data, and a database
/// from a newer schema is not silently downgraded.
@Suite("storage hardening")
struct StorageHardeningTests {
    @Test("an object file others can write is refused on read, naming the file and the chmod", arguments: [0o666, 0o620, 0o604] as [mode_t])
    func objectFileMode(mode: mode_t) async throws {
        let root = try TemporaryDirectory()
        let directory = root.path + "/acct"
        let driver = try DirectoryStorageDriver(directory: directory, account: "acct")
        _ = try await put(driver, "a/b", Data("ciphertext".utf8))
        chmod(directory + "/objects/a+b", mode)
        let error = await storageError { _ = try await driver.openObject(try ObjectName("a/b")) }
        #expect(error?.code == .permissions)
        #expect(error?.reason.contains(directory + "/objects/a+b") == true)
        #expect(error?.reason.contains("chmod 600") == true)
    }

    @Test("a write-ahead log or shared-memory file others can access is refused at open", arguments: ["-wal", "-shm"])
    func sideFileMode(suffix: String) async throws {
        let root = try TemporaryDirectory()
        let path = root.path + "/acct.sqlite"
        var driver: SQLiteStorageDriver? = try SQLiteStorageDriver(path: path, account: "acct")
        try await driver!.replaceKeyring(sampleKeyring("acct", generation: 1), expectedGeneration: nil)
        driver = nil
        if !FileManager.default.fileExists(atPath: path + suffix) {
            _ = FileManager.default.createFile(atPath: path + suffix, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        chmod(path + suffix, 0o666)
        let error = #expect(throws: StorageError.self) { try SQLiteStorageDriver(path: path, account: "acct") }
        #expect(error?.code == .permissions)
        #expect(error?.reason.contains(path + suffix) == true)
        #expect(error?.reason.contains("0666") == true)
    }

    @Test("a database with a newer schema version is refused, not rewritten to ours")
    func schemaFromTheFuture() async throws {
        let root = try TemporaryDirectory()
        let path = root.path + "/acct.sqlite"
        _ = try SQLiteStorageDriver(path: path, account: "acct")
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in try db.execute(sql: "PRAGMA user_version = 7") }
        try queue.close()
        let error = #expect(throws: StorageError.self) { try SQLiteStorageDriver(path: path, account: "acct") }
        #expect(error?.code == .misconfigured)
        #expect(error?.reason.contains("schema version 7") == true)
        let after = try DatabaseQueue(path: path)
        #expect(try await after.read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") } == 7)
    }

    @Test("an object name the driver would never write, found in a database, is corrupt naming the database and the name")
    func invalidStoredName() async throws {
        let root = try TemporaryDirectory()
        let path = root.path + "/acct.sqlite"
        let driver = try SQLiteStorageDriver(path: path, account: "acct")
        _ = try await put(driver, "good", Data("ciphertext".utf8))
        #expect(try await driver.listObjects() == [try ObjectName("good")])
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in try db.execute(sql: "INSERT INTO objects(name, revision, size) VALUES ('../escape', 'r-bad', 0)") }
        try queue.close()
        let error = await storageError { _ = try await driver.listObjects() }
        #expect(error?.code == .corrupt)
        #expect(error?.reason == "database '\(path)' holds an object with the invalid name '../escape'", "\(String(describing: error))")
    }

    @Test("a keyring generation at or beyond Int64.max is corrupt, not an overflow later")
    func generationBounds() throws {
        var keyring = sampleKeyring("acct", generation: UInt64.max)
        #expect(throws: VaultError.self) { try keyring.validate() }
        keyring.generation = UInt64(Int64.max)
        #expect(throws: VaultError.self) { try keyring.validate() }
        keyring.generation = 0
        #expect(throws: VaultError.self) { try keyring.validate() }
        keyring.generation = UInt64(Int64.max) - 1
        try keyring.validate()
    }

    @Test("makeDirectories creates each missing parent with the mode asked and reports them; existing ones are left alone")
    func makeDirectoriesMode() throws {
        let root = try TemporaryDirectory()
        let deep = root.path + "/a/b/c"
        let created = try SystemFile.makeDirectories(deep, mode: 0o700)
        #expect(created == [root.path + "/a", root.path + "/a/b", deep])
        for path in created { #expect(mode(path) == 0o700, "\(path)") }
        #expect(try SystemFile.makeDirectories(deep, mode: 0o700).isEmpty)
    }
}
