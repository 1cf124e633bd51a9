import CMKCore
import Foundation

/// The tamper-evident security log (SPEC §9): `<state-directory>/security.log`, mode 0600,
/// one JSON record per line, each carrying the hash of the one before.
///
/// Appends from any number of instances and processes (the daemon and `cmkctl`) are serialised
/// by an exclusive `flock(2)` on the log file, so the log stays one chain with consecutive
/// `seq`. Each append reads only the end of the file, writes its line with a single `write(2)`
/// on an `O_APPEND` descriptor and `fsync`s before returning. A crash mid-write leaves at most a
/// torn last line; ``verify()`` reports it as such and the next ``append(_:)`` repairs it,
/// recording the repair as its own ``SecurityEvent/logRepaired`` record.
///
/// All methods are synchronous and block the calling thread for at most `lockTimeout` plus the
/// time of one `fsync`.
public final class SecurityLog: Sendable {
    /// The file name inside the state directory.
    public static let fileName = "security.log"

    /// The log file.
    public let path: String
    private let clock: any WallClock
    let lockTimeout: Duration

    /// A log at `path` (created on the first append). `clock` stamps records; `lockTimeout`
    /// bounds the wait for another writer.
    public init(path: String, clock: any WallClock = SystemWallClock(), lockTimeout: Duration = .seconds(10)) {
        self.path = path
        self.clock = clock
        self.lockTimeout = lockTimeout
    }

    /// The log of a state directory: `<stateDirectory>/security.log`.
    public convenience init(stateDirectory: String, clock: any WallClock = SystemWallClock()) {
        self.init(path: (stateDirectory as NSString).appendingPathComponent(Self.fileName), clock: clock)
    }

    /// Appends one record and returns it once it is on disk.
    ///
    /// Throws `.invalidEntry` for an entry that ``SecurityLogEntry/validate()`` refuses,
    /// `.permissions` for a group/world-writable or inaccessible log, `.corrupt` if the end of the
    /// chain is broken or the first record is not the one the log was started with (run
    /// `cmkctl audit verify`), `.missing` if the log was started but has vanished or been emptied,
    /// `.lockTimeout` or `.io`. Nothing is written when it throws before the write.
    @discardableResult
    public func append(_ entry: SecurityLogEntry) throws(AuditError) -> SecurityRecord {
        try entry.validate()
        let anchor = try SecurityLogAnchor.read(for: path)
        // A log that was started and has vanished is not silently started again.
        if let anchor, try !LogFile.exists(path) { throw vanished(anchor, emptied: false) }
        let file = try LogFile.openForAppend(path)
        try file.lock(exclusive: true, timeout: lockTimeout)
        // Closing the descriptor (LogFile's deinit) releases the lock.
        let size = try file.status().st_size
        let end = try chainEnd(of: file, size: Int64(size), anchor: anchor)
        let tail = end.tail
        var seq = end.seq
        var prev = end.prev
        var firstHash = end.firstHash
        let now = clock.now()
        var bytes = [UInt8]()
        var sizeBefore = Int64(size)
        if let torn = tail.torn {
            var details = [
                "offset": String(torn.offset),
                "bytes": String(torn.bytes.count),
                "sha256Prefix": String(CanonicalJSON.sha256Hex(torn.bytes).prefix(16)),
            ]
            if let record = try? SecurityRecord.parse(line: torn.bytes), record.seq == seq, record.prev == prev,
               record.hash == record.computedHash {
                // The whole record reached the disk but its newline did not: keep it.
                details["action"] = "completed"
                bytes.append(UInt8(ascii: "\n"))
                seq += 1
                prev = record.hash
                firstHash = firstHash ?? record.hash
            } else {
                details["action"] = "truncated"
                try file.truncate(to: torn.offset)
                sizeBefore = torn.offset
            }
            let repair = SecurityRecord(seq: seq, time: now, entry: SecurityLogEntry(event: .logRepaired, actor: entry.actor, details: details), prev: prev)
            bytes += repair.canonicalBytes(includingHash: true) + [UInt8(ascii: "\n")]
            seq += 1
            prev = repair.hash
            firstHash = firstHash ?? repair.hash
        }
        let record = SecurityRecord(seq: seq, time: now, entry: entry, prev: prev)
        bytes += record.canonicalBytes(includingHash: true) + [UInt8(ascii: "\n")]
        try file.appendOnce(bytes, sizeBefore: sizeBefore)
        try file.sync()
        if anchor == nil {
            // Once per log (and once for a log older than anchors). A failure here leaves the record
            // appended; the next append writes the anchor.
            try? SecurityLogAnchor.create(for: path, firstHash: firstHash ?? record.hash, now: now)
        }
        return record
    }

    /// The records, oldest first, whose time is at or after `since` (all if nil).
    ///
    /// Parses every line but does not check the chain (use ``verify()``). A torn last line is
    /// skipped; any other line that is not a record throws `.corrupt` naming its line number.
    /// A log that does not exist yet has no records; one that its anchor says was started and
    /// that is missing or empty throws `.missing`.
    public func records(since: Date? = nil) throws(AuditError) -> [SecurityRecord] {
        let anchor = try SecurityLogAnchor.read(for: path)
        guard let file = try LogFile.openForReading(path) else {
            if let anchor { throw vanished(anchor, emptied: false) }
            return []
        }
        try file.lock(exclusive: false, timeout: lockTimeout)
        if let anchor, try file.status().st_size == 0 { throw vanished(anchor, emptied: true) }
        var result = [SecurityRecord]()
        _ = try file.forEachLine { (number, _, line) throws(AuditError) in
            let record: SecurityRecord
            do {
                record = try SecurityRecord.parse(line: line)
            } catch {
                throw AuditError(.corrupt, "line \(number) of security log '\(path)' is not a valid record (\(error)); run 'cmkctl audit verify'")
            }
            if let since, record.time < since { return }
            result.append(record)
        }
        return result
    }
}
