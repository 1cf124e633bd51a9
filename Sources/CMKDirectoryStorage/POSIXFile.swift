import Glibc
import CMKCore
import Foundation

/// The system calls the directory driver needs, from ``SystemFile``; each failure becomes a
/// ``StorageError`` naming the operation and the path.
enum POSIXFile {
    static func error(_ operation: String, _ path: String, _ code: Int32 = errno) -> StorageError {
        storageError(SystemFileError(operation, path, code: code))
    }

    /// A failed call as a ``StorageError``; a write refused by a read-only file system (EROFS)
    /// says what still works.
    static func storageError(_ failure: SystemFileError) -> StorageError {
        failure.code == EROFS ? .readOnlyFileSystem(failure.description) : StorageError(failure)
    }

    /// Runs a ``SystemFile`` call, turning its failure into a ``StorageError``.
    private static func mapped<T>(_ body: () throws(SystemFileError) -> T) throws(StorageError) -> T {
        do throws(SystemFileError) { return try body() } catch { throw storageError(error) }
    }

    /// `open(2)`, retried on EINTR. Returns nil for ENOENT when `missingOK`.
    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0, missingOK: Bool = false) throws -> Int32? {
        try mapped { () throws(SystemFileError) in try SystemFile.open(path, flags, mode: mode, missingOK: missingOK) }
    }

    static func status(of fd: Int32, _ path: String) throws -> Glibc.stat {
        try mapped { () throws(SystemFileError) in try SystemFile.status(of: fd, path) }
    }

    /// `stat(2)`, or nil if the path does not exist.
    static func status(_ path: String) throws -> Glibc.stat? {
        try mapped { () throws(SystemFileError) in try SystemFile.status(path) }
    }

    static func writeAll(_ fd: Int32, _ data: Data, _ path: String) throws {
        try mapped { () throws(SystemFileError) in try SystemFile.writeAll(fd, data, path) }
    }

    /// Reads up to `count` bytes, fewer only at the end of the file.
    static func read(_ fd: Int32, upTo count: Int, _ path: String) throws -> Data {
        try mapped { () throws(SystemFileError) in try SystemFile.read(fd, upTo: count, path) }
    }

    static func fsync(_ fd: Int32, _ path: String) throws {
        try mapped { () throws(SystemFileError) in try SystemFile.fsync(fd, path) }
    }

    /// Makes a rename or unlink inside `directory` durable.
    static func fsyncDirectory(_ directory: String) throws {
        try mapped { () throws(SystemFileError) in try SystemFile.fsyncDirectory(directory) }
    }

    static func rename(_ from: String, _ to: String) throws {
        try mapped { () throws(SystemFileError) in try SystemFile.rename(from, to) }
    }

    /// `unlink(2)`; returns false if the file did not exist.
    @discardableResult
    static func unlink(_ path: String) throws -> Bool {
        try mapped { () throws(SystemFileError) in try SystemFile.unlink(path) }
    }

    /// 16 random bytes as 32 hex digits, for revisions and temp names.
    static func randomToken() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// Refuses a file or directory that breaks `rule`: the wrong type (`.misconfigured`, with
    /// `typeHint` appended when given), another user's, or open to group or others (`.permissions`).
    static func require(_ rule: FileAccessRule, _ info: Glibc.stat, _ path: String, what: String, typeHint: String? = nil) throws {
        guard let problem = rule.problem(with: info, path: path, what: what) else { return }
        guard problem.kind == .type else { throw StorageError(.permissions, problem.description) }
        throw StorageError(.misconfigured, typeHint.map { "\(problem); \($0)" } ?? problem.description)
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
