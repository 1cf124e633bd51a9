import Glibc
import CMKCore
import Foundation

/// The system calls behind ``SecurityLog``: opening with mode checks, `flock(2)`, reading the
/// tail backwards and streaming lines. Every failure becomes an ``AuditError`` naming the path.
struct LogFile: ~Copyable {
    let fd: Int32
    let path: String

    /// Opens the log for appending (`O_APPEND`), creating it with mode 0600 if absent.
    static func openForAppend(_ path: String) throws(AuditError) -> LogFile {
        let existed = try exists(path)
        let fd = try open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW, mode: 0o600)!
        let file = LogFile(fd: fd, path: path)
        if !existed {
            try file.adoptDirectoryOwnerIfRoot()
            try fsyncDirectory(of: path)
        }
        try file.requireSafeMode()
        return file
    }

    /// Opens an existing log for appending without creating it (a check that it can be
    /// appended); nil if it does not exist.
    static func openExisting(_ path: String) throws(AuditError) -> LogFile? {
        guard let fd = try open(path, O_RDWR | O_APPEND | O_NOFOLLOW, missingOK: true) else { return nil }
        let file = LogFile(fd: fd, path: path)
        try file.requireSafeMode()
        return file
    }

    /// Opens the log for reading; nil if it does not exist yet.
    static func openForReading(_ path: String) throws(AuditError) -> LogFile? {
        guard let fd = try open(path, O_RDONLY | O_NOFOLLOW, missingOK: true) else { return nil }
        let file = LogFile(fd: fd, path: path)
        try file.requireSafeMode()
        return file
    }

    deinit { Glibc.close(fd) }

    static func error(_ operation: String, _ path: String, _ code: Int32 = errno) -> AuditError {
        let auditCode: AuditError.Code = (code == EACCES || code == EPERM || code == ELOOP) ? .permissions : .io
        let local = DescriptorExhaustion.isExhaustion(code) ? "; \(DescriptorExhaustion.remedy)" : ""
        return AuditError(auditCode, "\(operation) of security log '\(path)' failed: \(String(cString: strerror(code))) (errno \(code))\(local)")
    }

    /// Runs a ``SystemFile`` call, turning its failure into an ``AuditError``.
    static func mapped<T>(_ body: () throws(SystemFileError) -> T) throws(AuditError) -> T {
        do throws(SystemFileError) { return try body() } catch { throw Self.error(error.operation, error.path, error.code) }
    }

    private static func open(_ path: String, _ flags: Int32, mode: mode_t = 0, missingOK: Bool = false) throws(AuditError) -> Int32? {
        try mapped { () throws(SystemFileError) in try SystemFile.open(path, flags, mode: mode, missingOK: missingOK) }
    }

    static func exists(_ path: String) throws(AuditError) -> Bool {
        try mapped { () throws(SystemFileError) in try SystemFile.status(path, followLinks: false) != nil }
    }

    private static func fsyncDirectory(of path: String) throws(AuditError) {
        try mapped { () throws(SystemFileError) in try SystemFile.fsyncDirectory(SystemFile.directory(of: path)) }
    }

    func status() throws(AuditError) -> stat {
        let (fd, path) = (fd, path)
        return try Self.mapped { () throws(SystemFileError) in try SystemFile.status(of: fd, path) }
    }

    /// Refuses anything but a regular file that neither group nor others may write.
    private func requireSafeMode() throws(AuditError) {
        if let problem = FileAccessRule.appendOnlyLog.problem(with: try status(), path: path, what: "security log") {
            throw AuditError(.permissions, problem.description)
        }
    }

    /// When root (`cmkctl` under sudo) creates the log, hand it to the state directory's owner so
    /// the daemon can still append.
    private func adoptDirectoryOwnerIfRoot() throws(AuditError) {
        guard geteuid() == 0 else { return }
        let directory = (path as NSString).deletingLastPathComponent
        var info = stat()
        guard fstatat(AT_FDCWD, directory.isEmpty ? "." : directory, &info, 0) == 0 else { return }
        if info.st_uid != 0, fchown(fd, info.st_uid, info.st_gid) != 0 { throw Self.error("chown", path) }
    }

    /// Takes `flock(2)` (exclusive or shared), polling until `timeout`. The lock belongs to this
    /// open file description, so two `SecurityLog` instances in one process exclude each other too.
    func lock(exclusive: Bool, timeout: Duration) throws(AuditError) {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var pause: UInt32 = 200
        while flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else { throw Self.error("flock", path, code) }
            guard clock.now < deadline else {
                throw AuditError(.lockTimeout, "timed out after \(timeout) waiting for the lock on security log '\(path)'; another process holds it")
            }
            usleep(pause)
            pause = min(pause * 2, 10_000)
        }
    }

    func readAt(_ offset: Int64, count: Int) throws(AuditError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = buffer.withUnsafeMutableBytes { raw in
                pread(fd, raw.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled))
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw Self.error("read", path)
            }
            if got == 0 { break }
            filled += got
        }
        buffer.removeLast(count - filled)
        return buffer
    }

    /// The end of the file: the last newline-terminated line (without its newline) and where it
    /// starts, and any bytes after the last newline (a torn tail). Reads backwards in blocks,
    /// never the whole file.
    func tail(size: Int64) throws(AuditError) -> Tail {
        var buffer = [UInt8]()  // bytes from `start` to `size`
        var start = size
        let block: Int64 = 8192
        // Indices into `buffer` of the newlines found, from the end.
        var lastNewline: Int? = nil
        var lineStart: Int? = nil
        while start > 0 {
            let from = max(0, start - block)
            buffer = try readAt(from, count: Int(start - from)) + buffer
            let added = Int(start - from)
            start = from
            if let index = lastNewline { lastNewline = index + added }
            if lastNewline == nil, let index = buffer.lastIndex(of: UInt8(ascii: "\n")) { lastNewline = index }
            if let newline = lastNewline, let previous = buffer[..<newline].lastIndex(of: UInt8(ascii: "\n")) {
                lineStart = previous + 1
                break
            }
        }
        guard let newline = lastNewline else {
            return Tail(lastLine: nil, lastLineOffset: 0, torn: buffer.isEmpty ? nil : (0, buffer))
        }
        let first = lineStart ?? 0
        let torn = buffer[(newline + 1)...]
        return Tail(
            lastLine: Array(buffer[first..<newline]), lastLineOffset: start + Int64(first),
            torn: torn.isEmpty ? nil : (start + Int64(newline + 1), Array(torn))
        )
    }

    /// The first newline-terminated line (without its newline), or nil if the file holds no
    /// newline within its first `limit` bytes.
    func firstLine(limit: Int = 1 << 20) throws(AuditError) -> [UInt8]? {
        var line = [UInt8]()
        while line.count < limit {
            let block = try readAt(Int64(line.count), count: 8192)
            if block.isEmpty { return nil }
            if let newline = block.firstIndex(of: UInt8(ascii: "\n")) { return line + block[..<newline] }
            line += block
        }
        return nil
    }

    struct Tail {
        var lastLine: [UInt8]?
        var lastLineOffset: Int64
        var torn: (offset: Int64, bytes: [UInt8])?
    }

    /// Calls `body` with each newline-terminated line (1-based number, byte offset, bytes without
    /// the newline), reading in blocks; returns the unterminated bytes at the end, if any.
    func forEachLine(_ body: (Int, Int64, ArraySlice<UInt8>) throws(AuditError) -> Void) throws(AuditError) -> (offset: Int64, bytes: [UInt8])? {
        var pending = [UInt8]()
        var pendingOffset: Int64 = 0
        var readOffset: Int64 = 0
        var number = 0
        while true {
            let chunk = try readAt(readOffset, count: 65_536)
            if chunk.isEmpty { break }
            readOffset += Int64(chunk.count)
            pending += chunk
            var lineStart = pending.startIndex
            while let newline = pending[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
                number += 1
                try body(number, pendingOffset + Int64(lineStart), pending[lineStart..<newline])
                lineStart = newline + 1
            }
            pendingOffset += Int64(lineStart)
            pending.removeFirst(lineStart)
        }
        return pending.isEmpty ? nil : (pendingOffset, pending)
    }

    func truncate(to length: Int64) throws(AuditError) {
        while ftruncate(fd, off_t(length)) != 0 {
            if errno == EINTR { continue }
            throw Self.error("truncate", path)
        }
    }

    /// One `write(2)` of the whole buffer. A short write is undone (the caller holds the lock) and reported.
    func appendOnce(_ bytes: [UInt8], sizeBefore: Int64) throws(AuditError) {
        var written = -1
        repeat {
            written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, $0.count) }
        } while written < 0 && errno == EINTR
        if written == bytes.count { return }
        let failure = written < 0 ? Self.error("write", path) : AuditError(.io, "short write to security log '\(path)': \(written) of \(bytes.count) bytes")
        try? truncate(to: sizeBefore)
        throw failure
    }

    func sync() throws(AuditError) {
        let (fd, path) = (fd, path)
        try Self.mapped { () throws(SystemFileError) in try SystemFile.fsync(fd, path) }
    }
}
