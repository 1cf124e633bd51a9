import CMKCore
import CMKDirectoryStorage
import Foundation
import Glibc
import Testing

@Suite("Directory storage driver")
struct DirectoryStorageDriverTests {
    @Test("creates a 0700 directory, 0600 files and flat object names")
    func modes() async throws {
        let root = try TemporaryDirectory()
        let directory = root.path + "/acct"
        let driver = try DirectoryStorageDriver(directory: directory, account: "acct")
        try await driver.replaceKeyring(sampleKeyring("acct", generation: 1), expectedGeneration: nil)
        try await put(driver, "a/b/c", Data("hello".utf8))
        #expect(mode(directory) == 0o700)
        #expect(mode(directory + "/objects") == 0o700)
        #expect(mode(directory + "/keyring.json") == 0o600)
        #expect(mode(directory + "/.lock") == 0o600)
        #expect(mode(directory + "/objects/a+b+c") == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/objects") == ["a+b+c"])
    }

    @Test("refuses an account directory others can access, naming path, mode and fix")
    func unsafeDirectory() throws {
        let root = try TemporaryDirectory()
        let directory = root.path + "/open"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        chmod(directory, 0o755)
        let error = #expect(throws: StorageError.self) { try DirectoryStorageDriver(directory: directory, account: "open") }
        #expect(error?.code == .permissions)
        #expect(error?.reason.contains(directory) == true)
        #expect(error?.reason.contains("0755") == true)
        #expect(error?.reason.contains("chmod 700") == true)
    }

    @Test("refuses an account location that is a file, naming it")
    func locationIsAFile() throws {
        let root = try TemporaryDirectory()
        let path = root.path + "/file"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8), attributes: [.posixPermissions: 0o600]))
        let error = #expect(throws: StorageError.self) { try DirectoryStorageDriver(directory: path, account: "file") }
        #expect(error?.code == .misconfigured)
        #expect(error?.reason == "account directory '\(path)' is not a directory; an account location must be a directory")
    }

    @Test("refuses a keyring file others can read", arguments: [0o644, 0o640, 0o660, 0o604] as [mode_t])
    func unsafeKeyring(fileMode: mode_t) async throws {
        let root = try TemporaryDirectory()
        let directory = root.path + "/acct"
        let driver = try DirectoryStorageDriver(directory: directory, account: "acct")
        try await driver.replaceKeyring(sampleKeyring("acct", generation: 1), expectedGeneration: nil)
        chmod(directory + "/keyring.json", fileMode)
        let error = #expect(throws: StorageError.self) { try DirectoryStorageDriver(directory: directory, account: "acct") }
        #expect(error?.code == .permissions)
        #expect(error?.reason.contains(directory + "/keyring.json") == true)
        #expect(error?.reason.contains("chmod 600") == true)
        // An instance opened earlier refuses to read it too.
        #expect(await storageError { _ = try await driver.readKeyring() }?.code == .permissions)
    }

    @Test("a corrupt keyring is refused, named, and never overwritten")
    func corruptKeyring() async throws {
        let root = try TemporaryDirectory()
        let directory = root.path + "/acct"
        let driver = try DirectoryStorageDriver(directory: directory, account: "acct")
        let garbage = Data("{\"account\": \"acct\", \"generation\": 3, trunc".utf8)
        _ = FileManager.default.createFile(atPath: directory + "/keyring.json", contents: garbage, attributes: [.posixPermissions: 0o600])
        let read = await storageError { _ = try await driver.readKeyring() }
        #expect(read?.code == .corrupt)
        #expect(read?.reason.contains(directory + "/keyring.json") == true)
        for expected: UInt64? in [nil, 1, 2, 3] {
            let write = await storageError {
                try await driver.replaceKeyring(sampleKeyring("acct", generation: (expected ?? 0) + 1), expectedGeneration: expected)
            }
            #expect(write?.code == .corrupt)
        }
        #expect(FileManager.default.contents(atPath: directory + "/keyring.json") == garbage)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == [".lock", "keyring.json", "objects"])
    }

    @Test("opening removes temporaries left by a crash but not a live writer's")
    func staleTemporaries() async throws {
        let root = try TemporaryDirectory()
        let directory = root.path + "/acct"
        let first = try DirectoryStorageDriver(directory: directory, account: "acct")
        try await first.replaceKeyring(sampleKeyring("acct", generation: 1), expectedGeneration: nil)
        try await put(first, "kept", Data("committed".utf8))
        let live = try await first.makeObjectWriter(try ObjectName("live"))
        try await live.write(Data("in flight".utf8))

        let staleKeyring = directory + "/.keyring.json.tmp-0123"
        let staleObject = directory + "/objects/.tmp-4567"
        _ = FileManager.default.createFile(atPath: staleKeyring, contents: Data("{".utf8), attributes: [.posixPermissions: 0o600])
        _ = FileManager.default.createFile(atPath: staleObject, contents: Data("half".utf8), attributes: [.posixPermissions: 0o600])
        try backdate(staleObject, by: 3600)
        let temporaries = try FileManager.default.contentsOfDirectory(atPath: directory + "/objects").filter { $0.hasPrefix(".tmp-") }
        for temp in temporaries { try backdate(directory + "/objects/" + temp, by: 3600) }
        #expect(temporaries.count == 2)

        let second = try DirectoryStorageDriver(directory: directory, account: "acct")
        #expect(!FileManager.default.fileExists(atPath: staleKeyring))
        #expect(!FileManager.default.fileExists(atPath: staleObject))
        let left = try FileManager.default.contentsOfDirectory(atPath: directory + "/objects").filter { $0.hasPrefix(".tmp-") }
        #expect(left.count == 1, "the live writer's temporary file survives")
        _ = try await live.commit(.ifAbsent)
        #expect(try await get(second, "live") == Data("in flight".utf8))
        #expect(try await get(second, "kept") == Data("committed".utf8))
        #expect(try await second.readKeyring()?.generation == 1)
    }

    @Test("a compare-and-swap waits for another process's flock and gives up after its timeout")
    func crossProcessLock() async throws {
        let root = try TemporaryDirectory()
        let directory = root.path + "/acct"
        let patient = try DirectoryStorageDriver(directory: directory, account: "acct", lockTimeout: .seconds(20))
        let impatient = try DirectoryStorageDriver(directory: directory, account: "acct", lockTimeout: .milliseconds(300))
        let first = sampleKeyring("acct", generation: 1)
        try await patient.replaceKeyring(first, expectedGeneration: nil)

        let holder = try HelperProcess(python: """
            import fcntl, sys, time
            f = open(sys.argv[1], 'a')
            fcntl.flock(f, fcntl.LOCK_EX)
            print('locked', flush=True)
            sys.stdin.read()
            """, [directory + "/.lock"])
        defer { holder.stop() }
        let refused = await storageError { try await impatient.replaceKeyring(sampleKeyring("acct", generation: 2), expectedGeneration: 1) }
        #expect(refused?.code == .io)
        #expect(refused?.reason.contains(directory + "/.lock") == true)
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

    @Test("an object file without a valid header is reported corrupt")
    func corruptObject() async throws {
        let root = try TemporaryDirectory()
        let directory = root.path + "/acct"
        let driver = try DirectoryStorageDriver(directory: directory, account: "acct")
        _ = FileManager.default.createFile(atPath: directory + "/objects/x+y", contents: Data("no header".utf8), attributes: [.posixPermissions: 0o600])
        #expect(try await driver.listObjects() == [try ObjectName("x/y")])
        #expect(await storageError { _ = try await driver.openObject(try ObjectName("x/y")) }?.code == .corrupt)
    }
}

@Suite("Directory storage driver: kept keyrings", .serialized)
struct DirectoryKeyringCacheTests {
    @Test("a kept keyring is dropped when the file is replaced, rewritten in place or opened to others")
    func keptUntilChanged() async throws {
        let root = try TemporaryDirectory()
        let directory = root.path + "/acct"
        let mine = try DirectoryStorageDriver(directory: directory, account: "acct")
        try await mine.replaceKeyring(sampleKeyring("acct", generation: 1), expectedGeneration: nil)
        try await settleFiles()
        #expect(try await mine.readKeyring()?.generation == 1)
        #expect(try await mine.readKeyring()?.generation == 1)
        // Another process replaces the keyring (a new inode).
        let other = try DirectoryStorageDriver(directory: directory, account: "acct")
        try await other.replaceKeyring(sampleKeyring("acct", generation: 2), expectedGeneration: 1)
        #expect(try await mine.readKeyring()?.generation == 2)

        try await settleFiles()
        #expect(try await mine.readKeyring()?.generation == 2)
        // Rewritten in place (same inode): a damaged file is refused, not served from memory.
        let path = directory + "/keyring.json"
        let valid = try Data(contentsOf: URL(fileURLWithPath: path))
        try rewriteInPlace(path, Data("{".utf8))
        let damaged = await #expect(throws: StorageError.self) { try await mine.readKeyring() }
        #expect(damaged?.code == .corrupt)
        try rewriteInPlace(path, valid)
        #expect(try await mine.readKeyring()?.generation == 2)

        // The mode check still runs on a kept keyring: a chmod moves the change time.
        try await settleFiles()
        #expect(try await mine.readKeyring()?.generation == 2)
        chmod(path, 0o644)
        let exposed = await #expect(throws: StorageError.self) { try await mine.readKeyring() }
        #expect(exposed?.code == .permissions)
    }

    private func rewriteInPlace(_ path: String, _ data: Data) throws {
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: data)
        try handle.close()
    }
}
