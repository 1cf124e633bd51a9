import CMKCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What identifies one written state of a file: every write replaces the file by rename, so a
/// changed document has a new inode and (almost always) a new change time.
struct FileIdentity: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int
    var changedSeconds: Int
    var changedNanoseconds: Int

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        #if canImport(Darwin)
        modifiedSeconds = info.st_mtimespec.tv_sec
        modifiedNanoseconds = info.st_mtimespec.tv_nsec
        changedSeconds = info.st_ctimespec.tv_sec
        changedNanoseconds = info.st_ctimespec.tv_nsec
        #else
        modifiedSeconds = info.st_mtim.tv_sec
        modifiedNanoseconds = info.st_mtim.tv_nsec
        changedSeconds = info.st_ctim.tv_sec
        changedNanoseconds = info.st_ctim.tv_nsec
        #endif
    }
}

/// Crash-safe file primitives for the vault directory: atomic replacement (temp file, fsync,
/// rename, fsync of the directory), consistent reads, and an exclusive `flock`.
enum VaultFiles {
    static func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// The file's current identity, or nil if it does not exist.
    static func identity(of path: String) throws(VaultError) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw VaultError(.unavailable, "cannot stat \(path): \(errnoText())")
        }
        return FileIdentity(info)
    }

    /// Reads a whole file through one descriptor, so the identity belongs to exactly these bytes.
    /// Returns nil if the file does not exist.
    static func read(_ path: String) throws(VaultError) -> (data: Data, identity: FileIdentity)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw VaultError(.unavailable, "cannot open \(path): \(errnoText())")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw VaultError(.unavailable, "cannot stat \(path): \(errnoText())") }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw VaultError(.unavailable, "cannot read \(path): \(errnoText())")
            }
            if count == 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        return (data, FileIdentity(info))
    }

    /// Replaces `path` atomically with `data` (mode `mode`): write a temp file in the same
    /// directory, fsync it, rename it over the target, fsync the directory.
    static func atomicWrite(_ data: Data, to path: String, mode: mode_t = 0o600) throws(VaultError) {
        let directory = (path as NSString).deletingLastPathComponent
        let temp = try writeTemp(data, directory: directory, name: (path as NSString).lastPathComponent, mode: mode)
        guard rename(temp, path) == 0 else {
            let text = errnoText()
            unlink(temp)
            throw VaultError(.unavailable, "cannot rename \(temp) to \(path): \(text)")
        }
        try syncDirectory(directory)
    }

    /// Creates `path` with `data` only if it does not exist yet (temp file + `link`, so the target
    /// appears complete or not at all). Returns false if it already existed.
    static func createExclusively(_ data: Data, at path: String, mode: mode_t = 0o600) throws(VaultError) -> Bool {
        let directory = (path as NSString).deletingLastPathComponent
        let temp = try writeTemp(data, directory: directory, name: (path as NSString).lastPathComponent, mode: mode)
        defer { unlink(temp) }
        guard link(temp, path) == 0 else {
            if errno == EEXIST { return false }
            throw VaultError(.unavailable, "cannot create \(path): \(errnoText())")
        }
        try syncDirectory(directory)
        return true
    }

    /// Removes a file and makes the removal durable.
    static func remove(_ path: String) throws(VaultError) {
        guard unlink(path) == 0 || errno == ENOENT else {
            throw VaultError(.unavailable, "cannot remove \(path): \(errnoText())")
        }
        try syncDirectory((path as NSString).deletingLastPathComponent)
    }

    private static func writeTemp(_ data: Data, directory: String, name: String, mode: mode_t) throws(VaultError) -> String {
        let suffix = (0..<8).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.joined()
        let temp = "\(directory)/.\(name).\(suffix).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw VaultError(.unavailable, "cannot create \(temp): \(errnoText())") }
        var failure: String?
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = "cannot write \(temp): \(errnoText())"
                    return
                }
                offset += written
            }
        }
        if failure == nil, fchmod(fd, mode) != 0 { failure = "cannot chmod \(temp): \(errnoText())" }
        if failure == nil, fsync(fd) != 0 { failure = "cannot fsync \(temp): \(errnoText())" }
        close(fd)
        if let failure {
            unlink(temp)
            throw VaultError(.unavailable, failure)
        }
        return temp
    }

    static func syncDirectory(_ directory: String) throws(VaultError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw VaultError(.unavailable, "cannot open directory \(directory): \(errnoText())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw VaultError(.unavailable, "cannot fsync directory \(directory): \(errnoText())") }
    }

    /// Runs `body` holding an exclusive `flock` on `lockPath`. The lock belongs to this open file
    /// description, so it excludes other processes and other descriptors in this process alike.
    static func withExclusiveLock<R>(_ lockPath: String, _ body: () throws(VaultError) -> R) throws(VaultError) -> R {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VaultError(.unavailable, "cannot open lock file \(lockPath): \(errnoText())") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            throw VaultError(.unavailable, "cannot lock \(lockPath): \(errnoText())")
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// Creates the directory with mode 0700 if missing, then checks it is a directory owned by
    /// the current user and not writable by group or others.
    static func prepareDirectory(_ path: String, what: String) throws(VaultError) {
        var info = stat()
        if stat(path, &info) != 0 {
            guard errno == ENOENT else { throw VaultError(.misconfigured, "cannot stat \(what) \(path): \(errnoText())") }
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw VaultError(.misconfigured, "cannot create \(what) \(path)", underlying: error)
            }
            chmod(path, 0o700)
            guard stat(path, &info) == 0 else { throw VaultError(.misconfigured, "cannot stat \(what) \(path): \(errnoText())") }
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw VaultError(.misconfigured, "\(what) \(path) is not a directory")
        }
        guard info.st_uid == geteuid() else {
            throw VaultError(.misconfigured, "\(what) \(path) is owned by uid \(info.st_uid), not by the current user (uid \(geteuid())): chown it to the user the syncer runs as")
        }
        let mode = info.st_mode & 0o7777
        guard mode & 0o022 == 0 else {
            throw VaultError(.misconfigured, "\(what) \(path) has mode \(octal(mode)), which lets group or others write to it: chmod 700 \(path)")
        }
    }

    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

#if canImport(Glibc)
private let posixRead = Glibc.read
#else
private let posixRead = Darwin.read
#endif
