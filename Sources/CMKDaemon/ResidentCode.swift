import Foundation
import Glibc

/// Hands the clean file pages the daemon has mapped (its code, the Swift runtime, Foundation,
/// libcrypto, SQLite, read-only data) back to the kernel after a pass.
///
/// Between passes the daemon sleeps for minutes, yet about four fifths of its resident memory
/// were such pages (docs/performance.md "Where the daemon's memory went"): code run once at the
/// start or during the pass, mapped in 64 KiB runs by the kernel's fault-around. They are copies of
/// files in the page cache, never changed by this process, so dropping them from its page tables
/// loses nothing: the next pass faults back what it runs (minor faults from the page cache, or
/// reads from disk if the kernel reclaimed them meanwhile). Pages only this process maps become
/// reclaimable cache; pages other processes map (libc) stay theirs.
///
/// Only mappings that cannot be written and hold no private copy (`Anonymous: 0 kB` in
/// `/proc/self/smaps`) are dropped: a read-only mapping whose pages were relocated at load
/// (RELRO) holds private copies and is left alone, so no page can ever revert to the file's bytes.
enum ResidentCode {
    /// Drops the clean file pages of read-only mappings; returns the bytes that were resident in them.
    @discardableResult
    static func release(smaps: String = "/proc/self/smaps") -> Int {
        guard let text = readAll(smaps) else { return 0 }
        var released = 0
        for mapping in mappings(text) where mapping.isDroppable {
            guard let start = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            if madvise(start, Int(mapping.end - mapping.start), MADV_DONTNEED) == 0 { released += mapping.residentKiB * 1_024 }
        }
        return released
    }

    /// The whole of a /proc file: read(2) until it returns 0 (the kernel returns /proc/self/smaps
    /// a page at a time, and a short read is not its end).
    static func readAll(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    struct Mapping: Equatable {
        var start: UInt
        var end: UInt
        var permissions: Substring
        var path: Substring
        var residentKiB = 0
        var anonymousKiB = 0
        var lockedKiB = 0

        /// A file mapping that is neither writable nor holds private (anonymous) pages, nor locked.
        var isDroppable: Bool {
            path.hasPrefix("/") && !permissions.contains("w") && anonymousKiB == 0 && lockedKiB == 0 && residentKiB > 0
        }
    }

    /// The mappings of an smaps text with their `Rss`, `Anonymous` and `Locked` sizes.
    static func mappings(_ text: String) -> [Mapping] {
        var result: [Mapping] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.last != ":", let dash = first.firstIndex(of: "-"), fields.count >= 5,
               let start = UInt(first[..<dash], radix: 16), let end = UInt(first[first.index(after: dash)...], radix: 16) {
                result.append(Mapping(start: start, end: end, permissions: fields[1], path: fields.count > 5 ? fields[5] : ""))
                continue
            }
            guard !result.isEmpty, fields.count >= 2, let kiB = Int(fields[1]) else { continue }
            switch first {
            case "Rss:": result[result.count - 1].residentKiB = kiB
            case "Anonymous:": result[result.count - 1].anonymousKiB = kiB
            case "Locked:": result[result.count - 1].lockedKiB = kiB
            default: break
            }
        }
        return result
    }
}
