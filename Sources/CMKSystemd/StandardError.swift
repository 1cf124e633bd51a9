import Foundation
import Synchronization

/// Writes the daemon's log lines and messages to stderr with write(2), never trapping.
///
/// `FileHandle.write` traps on any error, so a log file on a full disk, a file over
/// `ulimit -f` (RLIMIT_FSIZE) or a closed pipe used to kill the daemon at its first line (SIGILL,
/// exit 132) on every restart. Here a line that cannot be written whole is dropped and counted;
/// EINTR is retried, EAGAIN (a non-blocking stderr) waits up to a second for room. The next line
/// that can be written is preceded by a note saying how many were dropped.
///
/// Call ``ignoreWriteSignals()`` at start: otherwise SIGXFSZ (over RLIMIT_FSIZE) and SIGPIPE (a
/// reader that went away) terminate the process before write(2) can return an error.
public enum StandardError {
    private static let state = Mutex<(dropped: Int, unreported: Int)>((0, 0))

    /// Lines dropped since the process started.
    public static var droppedLines: Int { state.withLock { $0.dropped } }

    /// SIGXFSZ and SIGPIPE ignored, so write(2) fails with EFBIG or EPIPE instead of killing the process.
    public static func ignoreWriteSignals() {
        signal(SIGXFSZ, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
    }

    /// Writes `line` (which should end in a newline); false if it was dropped. Serialised, so
    /// lines of concurrent callers never interleave. `note` makes the line that reports drops.
    @discardableResult
    public static func write(_ line: String, note: (Int) -> String = defaultNote) -> Bool {
        state.withLock { counts in
            if counts.unreported > 0 {
                guard writeAll(Array(note(counts.unreported).utf8)) else { return drop(&counts) }
                counts.unreported = 0
            }
            return writeAll(Array(line.utf8)) || drop(&counts)
        }
    }

    /// The note before the first line written after drops.
    public static func defaultNote(_ count: Int) -> String {
        "cmk-syncer: \(count) log line(s) could not be written to stderr (disk full, file size limit or a closed reader) and were dropped\n"
    }

    private static func drop(_ counts: inout (dropped: Int, unreported: Int)) -> Bool {
        counts.dropped += 1
        counts.unreported += 1
        return false
    }

    /// write(2) until every byte is out; false on an error other than EINTR, or EAGAIN that lasts.
    static func writeAll(_ bytes: [UInt8], fd: Int32 = 2) -> Bool {
        var offset = 0
        var stalls = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
            }
            if written > 0 {
                offset += written
                stalls = 0
                continue
            }
            let code = written < 0 ? errno : EIO
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK, stalls < 10 {
                stalls += 1
                var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&descriptor, 1, 100)
                continue
            }
            return false
        }
        return true
    }
}
