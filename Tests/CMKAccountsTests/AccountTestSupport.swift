import CMKAccounts
import CMKCore
import CMKDirectoryStorage
import CMKEnvelope
import CMKSQLiteStorage
import CMKTesting
import Foundation

/// A vault, a cache, executors and helpers for account tests.
struct Harness {
    let clock = ManualClock()
    let vault: InMemoryKeyVault
    let key: KeyReference
    let cache: DEKCache
    let resolver: DEKResolver
    let executor: RebindExecutor
    let plane: DataPlane

    init(segmentSize: Int = 1024) throws {
        vault = InMemoryKeyVault(clock: clock)
        key = try KeyReference("data-at-rest-rsa2048")
        cache = DEKCache(configuration: try .init(), clock: clock)
        resolver = DEKResolver(vault: vault, cache: cache)
        executor = RebindExecutor(resolver: resolver, clock: clock)
        var plane = DataPlane(resolver: resolver)
        plane.segmentSize = segmentSize
        self.plane = plane
    }

    func account(_ name: String = "acct-1", kind: StorageKind = .file, driver: (any StorageDriver)? = nil) -> Account {
        Account(name: name, kind: kind, driver: driver ?? InMemoryStorageDriver(account: name), key: key)
    }

    func current() async throws -> KeyVersion {
        guard case .present(let state) = try await vault.snapshot(of: key), let current = state.current else {
            throw StorageError(.notFound, "no current version")
        }
        return current
    }
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

/// A temporary directory removed at deinit.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "cmk-accounts-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Every regular file's bytes under the directory.
    func allFiles() throws -> [(String, Data)] {
        let enumerator = FileManager.default.enumerator(atPath: path)!
        var out: [(String, Data)] = []
        while let relative = enumerator.nextObject() as? String {
            let full = path + "/" + relative
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue {
                out.append((relative, try Data(contentsOf: URL(fileURLWithPath: full))))
            }
        }
        return out
    }
}
