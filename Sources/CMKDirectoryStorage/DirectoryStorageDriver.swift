import CMKCore
import Foundation
import Glibc

/// Stores one account in one directory (SPEC §4, §10 "directory").
///
/// Layout (see `docs/storage.md`):
/// ```
/// <directory>/            0700, owned by the daemon's user
///   keyring.json          0600, the keyring as JSON
///   .lock                 0600, flock(2) target for compare-and-swap
///   .keyring.json.tmp-*   a keyring being written (only while the lock is held)
///   objects/              0700
///     <name, '/' as '+'>  0600, 24-byte revision header + the object's bytes
///     .tmp-*              objects being written
/// ```
/// Every replace writes a temporary file in the same directory, fsyncs it, renames it over the
/// old one and fsyncs the directory, so a crash leaves the old or the new file, never a torn
/// one. Conditional writes (keyring generation, object revision) are checked and applied while
/// holding an exclusive `flock` on `.lock`, which serialises every process sharing the
/// directory. Opening the driver refuses directories and keyring files that group or others
/// can access, and removes temporaries left by a crash.
///
/// On a file system mounted read-only the driver opens all the same (nothing is created or
/// removed) and serves reads; every write fails with a ``StorageError`` saying that the file
/// system is read-only, so that account alone fails its writes and rebinds. A remount
/// read-write lets the next write through.
public final class DirectoryStorageDriver: StorageDriver {
    public let account: String
    /// The account directory.
    public let directory: String
    let objectsDirectory: String
    let keyringPath: String
    let lock: AccountLock
    /// The decoded keyring, kept while `keyring.json` stays as it was.
    let keyringCache = FileDerivedCache<Keyring?>()

    /// Object temporaries younger than this are never removed at open, even if unlocked: they
    /// may belong to a writer in another process that has not taken its lock yet.
    static let staleTemporaryAge: TimeInterval = 10

    /// Opens (creating if needed) the account directory `directory` for `account`.
    ///
    /// - Parameters:
    ///   - directory: the account's directory; created with mode 0700 (parents as needed).
    ///   - account: the account name, which stored keyrings must carry.
    ///   - lockTimeout: how long a compare-and-swap waits for another process's lock before
    ///     failing with `.io` (default 30 s).
    /// - Throws: `.permissions` if the directory, `objects/` or `keyring.json` is accessible to
    ///   group or others or owned by another user; `.io` / `.misconfigured` if it cannot be created.
    public init(directory: String, account: String, lockTimeout: Duration = .seconds(30)) throws {
        guard !directory.isEmpty else {
            throw StorageError(.misconfigured, "account '\(account)' has an empty directory location")
        }
        self.account = account
        self.directory = directory
        self.objectsDirectory = directory + "/objects"
        self.keyringPath = directory + "/keyring.json"
        self.lock = AccountLock(path: directory + "/.lock", timeout: lockTimeout)

        try Self.makePrivateDirectory(directory, parents: true)
        try Self.makePrivateDirectory(objectsDirectory, parents: false)
        if let info = try POSIXFile.status(keyringPath) {
            try POSIXFile.require(.privateFile, info, keyringPath, what: "keyring file")
        }
        if let info = try POSIXFile.status(lock.path) {
            try POSIXFile.require(.privateFile, info, lock.path, what: "lock file")
        }
        // A read-only file system can neither hold a new lock file nor lose a temporary: reads only.
        if !SystemFile.isOnReadOnlyFileSystem(directory) {
            try removeStaleTemporaries()
        }
    }

    /// Creates `path` with mode 0700 if missing; refuses it if it exists with unsafe permissions.
    static func makePrivateDirectory(_ path: String, parents: Bool) throws {
        if try POSIXFile.status(path) == nil {
            let parent = (path as NSString).deletingLastPathComponent
            if parents, !parent.isEmpty, try POSIXFile.status(parent) == nil {
                do throws(SystemFileError) {
                    try SystemFile.makeDirectories(parent, mode: 0o700)
                } catch {
                    throw StorageError(.misconfigured, "cannot create the parent directory '\(parent)' of an account directory", underlying: error)
                }
            }
            if mkdir(path, 0o700) != 0 && errno != EEXIST { throw POSIXFile.error("mkdir", path) }
            if chmod(path, 0o700) != 0 { throw POSIXFile.error("chmod", path) }
        }
        guard let info = try POSIXFile.status(path) else {
            throw StorageError(.io, "account directory '\(path)' vanished right after it was created")
        }
        try POSIXFile.require(.privateDirectory, info, path, what: "account directory", typeHint: "an account location must be a directory")
    }

    /// Removes what a crash can leave behind: keyring temporaries (only written under the lock,
    /// so any we see while holding it are dead) and object temporaries that no live writer holds
    /// a `flock` on and that are older than ``staleTemporaryAge``.
    func removeStaleTemporaries() throws {
        _ = try lock.ifAvailable {
            for file in try contents(directory) where file.hasPrefix(".keyring.json.tmp-") {
                try POSIXFile.unlink(directory + "/" + file)
            }
        }
        var removed = false
        for file in try contents(objectsDirectory) where file.hasPrefix(ObjectFile.tempPrefix) {
            let path = objectsDirectory + "/" + file
            guard let fd = try POSIXFile.open(path, O_RDONLY | O_NOFOLLOW, missingOK: true) else { continue }
            defer { close(fd) }
            let info = try POSIXFile.status(of: fd, path)
            let age = Date().timeIntervalSince1970 - TimeInterval(info.st_mtim.tv_sec)
            guard age > Self.staleTemporaryAge, flock(fd, LOCK_EX | LOCK_NB) == 0 else { continue }
            removed = try POSIXFile.unlink(path) || removed
        }
        if removed { try POSIXFile.fsyncDirectory(objectsDirectory) }
    }

    func contents(_ path: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw StorageError(.io, "cannot list directory '\(path)'", underlying: error)
        }
    }

    // MARK: Keyring

    /// The keyring. Kept between calls while `keyring.json` is unchanged (a `stat`), so an idle
    /// pass does not read and decode every account's JSON; any replacement (a new inode), write,
    /// `chmod` or `chown` makes the next call read and check the file again.
    public func readKeyring() async throws -> Keyring? {
        try await keyringCache.value(fingerprint: keyringFingerprint) { try readKeyringFile() }
    }

    private func keyringFingerprint() throws -> [FileIdentity?] {
        do throws(SystemFileError) { return [try FileIdentity.of(keyringPath, followLinks: false)] } catch { throw StorageError(error) }
    }

    /// Reads and checks `keyring.json`; nil if there is none.
    func readKeyringFile() throws -> Keyring? {
        guard let fd = try POSIXFile.open(keyringPath, O_RDONLY | O_NOFOLLOW, missingOK: true) else { return nil }
        defer { close(fd) }
        let info = try POSIXFile.status(of: fd, keyringPath)
        try POSIXFile.require(.privateFile, info, keyringPath, what: "keyring file")
        guard info.st_size <= KeyringJSON.maximumSize else {
            throw StorageError(.corrupt, "keyring file '\(keyringPath)' is \(info.st_size) bytes, more than a keyring can be")
        }
        let data = try POSIXFile.read(fd, upTo: Int(info.st_size) + 1, keyringPath)
        return try KeyringJSON.decode(data, account: account, source: "keyring file '\(keyringPath)'")
    }

    public func replaceKeyring(_ keyring: Keyring, expectedGeneration: UInt64?) async throws {
        let data = try KeyringJSON.encodeChecked(keyring, account: account, expectedGeneration: expectedGeneration)
        try await lock.withLock {
            let current = try readKeyringFile()?.generation
            guard current == expectedGeneration else {
                throw StorageError(.conflict, "keyring of account '\(account)' is at generation \(current.map(String.init) ?? "none"), not \(expectedGeneration.map(String.init) ?? "none")")
            }
            keyringCache.invalidate()
            try writeKeyringFile(data)
        }
    }

    /// Atomically replaces `keyring.json` (temp file, fsync, rename, fsync directory). Caller holds the lock.
    func writeKeyringFile(_ data: Data) throws {
        let temp = directory + "/.keyring.json.tmp-" + Hex.encode(POSIXFile.randomToken())
        guard let fd = try POSIXFile.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600) else {
            throw StorageError(.io, "cannot create '\(temp)'")
        }
        do {
            defer { close(fd) }
            guard fchmod(fd, 0o600) == 0 else { throw POSIXFile.error("fchmod", temp) }
            try POSIXFile.writeAll(fd, data, temp)
            try POSIXFile.fsync(fd, temp)
            CrashPoints.hit("directory.keyring.temp-synced")
        } catch {
            _ = try? POSIXFile.unlink(temp)
            throw error
        }
        do {
            try POSIXFile.rename(temp, keyringPath)
            CrashPoints.hit("directory.keyring.renamed")
        } catch {
            _ = try? POSIXFile.unlink(temp)
            throw error
        }
        try POSIXFile.fsyncDirectory(directory)
    }
}
