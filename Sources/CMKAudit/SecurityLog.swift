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
    /// `.permissions` for a group/world-writable or inaccessible log, `.corrupt` if the last
    /// complete line is not a record (run `cmkctl audit verify`), `.lockTimeout` or `.io`.
    @discardableResult
    public func append(_ entry: SecurityLogEntry) throws(AuditError) -> SecurityRecord {
        try entry.validate()
        let file = try LogFile.openForAppend(path)
        try file.lock(exclusive: true, timeout: lockTimeout)
        // Closing the descriptor (LogFile's deinit) releases the lock.
        let size = try file.status().st_size
        let tail = try file.tail(size: Int64(size))

        var seq = 1
        var prev = SecurityRecord.genesisHash
        if let line = tail.lastLine {
            let last: SecurityRecord
            do {
                last = try SecurityRecord.parse(line: line)
            } catch {
                throw AuditError(.corrupt, "the last record of security log '\(path)' (at byte \(tail.lastLineOffset)) is not a valid record (\(error)); nothing was appended; run 'cmkctl audit verify'")
            }
            seq = last.seq + 1
            prev = last.computedHash
        }
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
            } else {
                details["action"] = "truncated"
                try file.truncate(to: torn.offset)
                sizeBefore = torn.offset
            }
            let repair = SecurityRecord(seq: seq, time: now, entry: SecurityLogEntry(event: .logRepaired, actor: entry.actor, details: details), prev: prev)
            bytes += repair.canonicalBytes(includingHash: true) + [UInt8(ascii: "\n")]
            seq += 1
            prev = repair.hash
        }
        let record = SecurityRecord(seq: seq, time: now, entry: entry, prev: prev)
        bytes += record.canonicalBytes(includingHash: true) + [UInt8(ascii: "\n")]
        try file.appendOnce(bytes, sizeBefore: sizeBefore)
        try file.sync()
        return record
    }

    /// The records, oldest first, whose time is at or after `since` (all if nil).
    ///
    /// Parses every line but does not check the chain (use ``verify()``). A torn last line is
    /// skipped; any other line that is not a record throws `.corrupt` naming its line number.
    /// A log that does not exist yet has no records.
    public func records(since: Date? = nil) throws(AuditError) -> [SecurityRecord] {
        guard let file = try LogFile.openForReading(path) else { return [] }
        try file.lock(exclusive: false, timeout: lockTimeout)
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
