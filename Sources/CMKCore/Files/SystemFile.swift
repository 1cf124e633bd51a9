import Foundation
import Glibc

/// A failed system call: which operation, on which path, and `errno`. Each module turns it into
/// its own error type (``StorageError``, ``VaultError``, the security log's error) so the
/// operator sees the module's vocabulary, while the system-call handling lives here once.
public struct SystemFileError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let path: String
    public let code: Int32

    public init(_ operation: String, _ path: String, code: Int32 = errno) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    /// `strerror` text, e.g. "Permission denied".
    public var message: String { String(cString: strerror(code)) }

    /// Whether the failure is about access rights (EACCES, EPERM, ELOOP from `O_NOFOLLOW`).
    public var isPermission: Bool { code == EACCES || code == EPERM || code == ELOOP }

    /// "open '/path' failed: Permission denied (errno 13)".
    public var description: String { "\(operation) '\(path)' failed: \(message) (errno \(code))" }
}

/// The file system calls the durable stores share (directory driver, local vault, security log,
/// daemon state): EINTR-safe open/read/write, fsync of files and directories, and the atomic
/// replacement protocol (temp file in the same directory, write, chmod, fsync, rename or link,
/// fsync of the directory). Every failure is a ``SystemFileError``.
public enum SystemFile {
    /// `open(2)` with `O_CLOEXEC`, retried on EINTR. Returns nil for ENOENT when `missingOK`.
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0, missingOK: Bool = false) throws(SystemFileError) -> Int32? {
        while true {
            let fd = systemOpen(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            let code = errno
            if code == EINTR { continue }
            if code == ENOENT && missingOK { return nil }
            throw SystemFileError("open", path, code: code)
        }
    }

    /// `fstat(2)`.
    public static func status(of fd: Int32, _ path: String) throws(SystemFileError) -> stat {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemFileError("fstat", path) }
        return info
    }

    /// `stat(2)` (or `lstat` when `followLinks` is false); nil if the path does not exist.
    public static func status(_ path: String, followLinks: Bool = true) throws(SystemFileError) -> stat? {
        var info = stat()
        if fstatat(AT_FDCWD, path, &info, followLinks ? 0 : AT_SYMLINK_NOFOLLOW) == 0 { return info }
        if errno == ENOENT { return nil }
        throw SystemFileError("stat", path)
    }

    /// Writes every byte, retrying short writes and EINTR.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ path: String) throws(SystemFileError) {
        var offset = 0
        while offset < bytes.count {
            let written = systemWrite(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw SystemFileError("write", path)
            }
            offset += written
        }
    }

    /// Writes every byte of `data`.
    public static func writeAll(_ fd: Int32, _ data: Data, _ path: String) throws(SystemFileError) {
        let failure: SystemFileError? = data.withUnsafeBytes { raw in
            do throws(SystemFileError) { try writeAll(fd, raw, path); return nil } catch { return error }
        }
        if let failure { throw failure }
    }

    /// Reads up to `count` bytes, fewer only at the end of the file.
    public static func read(_ fd: Int32, upTo count: Int, _ path: String) throws(SystemFileError) -> Data {
        var data = Data(count: count)
        var failure: SystemFileError?
        let filled = data.withUnsafeMutableBytes { raw -> Int in
            var offset = 0
            while offset < count {
                let got = systemRead(fd, raw.baseAddress! + offset, count - offset)
                if got < 0 {
                    if errno == EINTR { continue }
                    failure = SystemFileError("read", path)
                    return offset
                }
                if got == 0 { break }
                offset += got
            }
            return offset
        }
        if let failure { throw failure }
        data.count = filled
        return data
    }

    /// Reads the rest of the file.
    public static func readToEnd(_ fd: Int32, _ path: String) throws(SystemFileError) -> Data {
        var data = Data()
        while true {
            let chunk = try read(fd, upTo: 64 * 1024, path)
            data.append(chunk)
            if chunk.count < 64 * 1024 { return data }
        }
    }

    /// `fsync(2)`.
    public static func fsync(_ fd: Int32, _ path: String) throws(SystemFileError) {
        guard systemFsync(fd) == 0 else { throw SystemFileError("fsync", path) }
    }

    /// Makes a rename, link or unlink inside `directory` durable.
    public static func fsyncDirectory(_ directory: String) throws(SystemFileError) {
        let path = directory.isEmpty ? "." : directory
        guard let fd = try open(path, O_RDONLY | O_DIRECTORY) else { return }
        defer { close(fd) }
        try fsync(fd, path)
    }

    /// `rename(2)`.
    public static func rename(_ from: String, _ to: String) throws(SystemFileError) {
        guard systemRename(from, to) == 0 else { throw SystemFileError("rename to '\(to)' of", from) }
    }

    /// `unlink(2)`; returns false if the file did not exist.
    @discardableResult
    public static func unlink(_ path: String) throws(SystemFileError) -> Bool {
        if systemUnlink(path) == 0 { return true }
        if errno == ENOENT { return false }
        throw SystemFileError("unlink", path)
    }

    /// Replaces `path` atomically with `data` at `mode`: a temp file in the same directory is
    /// written, chmod-ed, fsync-ed and renamed over the target, then the directory is fsync-ed.
    /// A crash at any point leaves the old file or the new one, never a mix.
    public static func atomicWrite(_ data: Data, to path: String, mode: mode_t) throws(SystemFileError) {
        let temp = try writeTemporary(data, beside: path, mode: mode)
        do throws(SystemFileError) {
            try rename(temp, path)
        } catch {
            _ = try? unlink(temp)
            throw error
        }
        try fsyncDirectory(directory(of: path))
    }

    /// Creates `path` with `data` only if it does not exist yet (temp file and `link(2)`, so the
    /// target appears complete or not at all). Returns false if it already existed.
    public static func createExclusively(_ data: Data, at path: String, mode: mode_t) throws(SystemFileError) -> Bool {
        let temp = try writeTemporary(data, beside: path, mode: mode)
        defer { _ = try? unlink(temp) }
        guard link(temp, path) == 0 else {
            if errno == EEXIST { return false }
            throw SystemFileError("link to '\(path)' of", temp)
        }
        try fsyncDirectory(directory(of: path))
        return true
    }

    /// Creates `path` and every missing parent with exactly `mode` (`chmod` after `mkdir`, so the
    /// process's umask cannot widen or narrow it); directories that exist are left as they are.
    /// Returns the directories it created, outermost first.
    @discardableResult
    public static func makeDirectories(_ path: String, mode: mode_t = 0o700) throws(SystemFileError) -> [String] {
        var missing: [String] = []
        var current = path
        while !current.isEmpty, current != "/", current != ".", try status(current) == nil {
            missing.append(current)
            current = (current as NSString).deletingLastPathComponent
        }
        for directory in missing.reversed() {
            if mkdir(directory, mode) != 0 {
                if errno == EEXIST { continue }  // made meanwhile by someone else: theirs, left alone
                throw SystemFileError("mkdir", directory)
            }
            if chmod(directory, mode) != 0 { throw SystemFileError("chmod", directory) }
        }
        return missing.reversed()
    }

    /// `path` with every symbolic link in its existing part resolved (`realpath(3)` of the longest
    /// existing prefix, the rest appended), so that "is this inside that directory" can be asked of
    /// where the data really goes. Paths that do not exist yet resolve through their nearest existing
    /// ancestor.
    public static func physicalPath(_ path: String) -> String {
        var existing = path
        var rest: [String] = []
        while !existing.isEmpty, existing != "/" {
            if let resolved = realpath(existing, nil) {
                defer { free(resolved) }
                let base = String(cString: resolved)
                return rest.isEmpty ? base : (base == "/" ? "" : base) + "/" + rest.reversed().joined(separator: "/")
            }
            rest.append((existing as NSString).lastPathComponent)
            existing = (existing as NSString).deletingLastPathComponent
        }
        return path
    }

    /// The directory part of a path ("." for a bare name).
    public static func directory(of path: String) -> String {
        let directory = (path as NSString).deletingLastPathComponent
        return directory.isEmpty ? "." : directory
    }

    /// `0755`-style rendering of a mode's permission bits.
    public static func octal(_ mode: mode_t) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// Writes `data` to a new, unpredictable temp file beside `path` and fsyncs it.
    private static func writeTemporary(_ data: Data, beside path: String, mode: mode_t) throws(SystemFileError) -> String {
        let suffix = (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let temp = "\(directory(of: path))/.\((path as NSString).lastPathComponent).\(suffix).tmp"
        guard let fd = try open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: mode) else {
            throw SystemFileError("open", temp, code: ENOENT)
        }
        do throws(SystemFileError) {
            defer { close(fd) }
            try writeAll(fd, data, temp)
            guard fchmod(fd, mode) == 0 else { throw SystemFileError("chmod", temp) }
            try fsync(fd, temp)
        } catch {
            _ = try? unlink(temp)
            throw error
        }
        return temp
    }
}

// The system calls by their Glibc names; inside ``SystemFile`` the short names are its own.
private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 { Glibc.open(path, flags, mode) }
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int { Glibc.read(fd, buffer, count) }
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { Glibc.write(fd, buffer, count) }
private func systemFsync(_ fd: Int32) -> Int32 { Glibc.fsync(fd) }
private func systemRename(_ from: String, _ to: String) -> Int32 { Glibc.rename(from, to) }
private func systemUnlink(_ path: String) -> Int32 { Glibc.unlink(path) }

extension StorageError {
    /// A failed file system call as a storage error: `.permissions` for access failures, `.io`
    /// otherwise; the reason names the operation, the path and the system's message.
    public init(_ failure: SystemFileError, file: String = #fileID, line: Int = #line) {
        self.init(failure.isPermission ? .permissions : .io, failure.description, file: file, line: line)
    }
}
