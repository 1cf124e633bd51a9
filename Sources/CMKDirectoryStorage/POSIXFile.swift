import Glibc
import CMKCore
import Foundation

/// Thin wrappers over the system calls the directory driver needs; each failure becomes a
/// ``StorageError`` naming the operation and the path.
enum POSIXFile {
    static func message(_ code: Int32) -> String { String(cString: strerror(code)) }

    static func error(_ operation: String, _ path: String, _ code: Int32 = errno) -> StorageError {
        let storageCode: StorageError.Code = (code == EACCES || code == EPERM) ? .permissions : .io
        return StorageError(storageCode, "\(operation) '\(path)' failed: \(message(code)) (errno \(code))")
    }

    /// `open(2)`, retried on EINTR. Returns nil for ENOENT when `missingOK`.
    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0, missingOK: Bool = false) throws -> Int32? {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            let code = errno
            if code == EINTR { continue }
            if code == ENOENT && missingOK { return nil }
            throw error("open", path, code)
        }
    }

    static func status(of fd: Int32, _ path: String) throws -> Glibc.stat {
        var info = Glibc.stat()
        guard Glibc.fstat(fd, &info) == 0 else { throw error("fstat", path) }
        return info
    }

    /// `stat(2)`, or nil if the path does not exist.
    static func status(_ path: String) throws -> Glibc.stat? {
        var info = Glibc.stat()
        if fstatat(AT_FDCWD, path, &info, 0) == 0 { return info }
        if errno == ENOENT { return nil }
        throw error("stat", path)
    }

    static func writeAll(_ fd: Int32, _ data: Data, _ path: String) throws {
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw error("write", path)
                }
                offset += written
            }
        }
    }

    /// Reads up to `count` bytes, fewer only at the end of the file.
    static func read(_ fd: Int32, upTo count: Int, _ path: String) throws -> Data {
        var data = Data(count: count)
        let filled = try data.withUnsafeMutableBytes { raw -> Int in
            var offset = 0
            while offset < count {
                let got = Glibc.read(fd, raw.baseAddress! + offset, count - offset)
                if got < 0 {
                    if errno == EINTR { continue }
                    throw error("read", path)
                }
                if got == 0 { break }
                offset += got
            }
            return offset
        }
        data.count = filled
        return data
    }

    static func fsync(_ fd: Int32, _ path: String) throws {
        guard Glibc.fsync(fd) == 0 else { throw error("fsync", path) }
    }

    /// Makes a rename or unlink inside `directory` durable.
    static func fsyncDirectory(_ directory: String) throws {
        guard let fd = try open(directory, O_RDONLY | O_DIRECTORY) else { return }
        defer { Glibc.close(fd) }
        try fsync(fd, directory)
    }

    static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw error("rename to '\(to)' of", from) }
    }

    /// `unlink(2)`; returns false if the file did not exist.
    @discardableResult
    static func unlink(_ path: String) throws -> Bool {
        if Glibc.unlink(path) == 0 { return true }
        if errno == ENOENT { return false }
        throw error("unlink", path)
    }

    /// 16 random bytes as 32 hex digits, for revisions and temp names.
    static func randomToken() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// `0755`-style rendering of a mode's permission bits.
    static func octal(_ mode: mode_t) -> String {
        let text = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - text.count)) + text
    }

    /// Refuses a file or directory that group or others may read or write, or that another user owns.
    static func requirePrivate(_ info: Glibc.stat, _ path: String, what: String, wanted: String) throws {
        if info.st_mode & 0o077 != 0 {
            throw StorageError(.permissions, "\(what) '\(path)' has mode \(octal(info.st_mode)), which gives group or others access; fix it with: chmod \(wanted) '\(path)'")
        }
        if info.st_uid != geteuid() {
            throw StorageError(.permissions, "\(what) '\(path)' is owned by uid \(info.st_uid), not by this process (uid \(geteuid())); fix it with: chown \(geteuid()) '\(path)'")
        }
    }
}

/// An exclusive advisory lock (`flock(2)`) on the account's lock file, shared by every process
/// and every driver instance using the directory. Each acquisition opens its own file
/// description, so two instances in one process exclude each other too.
struct AccountLock {
    let path: String
    let timeout: Duration

    /// Runs `body` while holding the lock. Waits by polling (never blocking a cooperative thread);
    /// throws `.io` if another holder keeps it longer than `timeout`.
    func withLock<T>(_ body: () throws -> T) async throws -> T {
        guard let fd = try POSIXFile.open(path, O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600) else {
            throw StorageError(.io, "lock file '\(path)' vanished")
        }
        defer { Glibc.close(fd) }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var pause = Duration.milliseconds(1)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else { throw POSIXFile.error("flock", path, code) }
            guard clock.now < deadline else {
                throw StorageError(.io, "timed out after \(timeout) waiting for the lock on '\(path)'; another process holds it")
            }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(25))
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// Runs `body` only if the lock is free right now; returns nil otherwise.
    func ifAvailable<T>(_ body: () throws -> T) throws -> T? {
        guard let fd = try POSIXFile.open(path, O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600) else { return nil }
        defer { Glibc.close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return nil }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}
