import CMKCore
import Foundation
import Glibc

extension SecurityLog {
    /// Throws unless an append would succeed, as far as can be told without writing: the log is
    /// a regular file this process may open for writing, with a safe mode, its lock can be
    /// taken, its last records form a chain and, once it has an anchor, it still starts with
    /// the anchored first record. A log not created yet needs a directory this process may
    /// write. A torn last line is fine (the next append repairs it).
    ///
    /// Operator commands call it before they change anything; the daemon calls it after every
    /// pass and reports `DEGRADED` while it throws. Throws what ``append(_:)`` would.
    public func requireAppendable() throws(AuditError) {
        let anchor = try SecurityLogAnchor.read(for: path)
        guard let file = try LogFile.openExisting(path) else {
            if let anchor { throw vanished(anchor, emptied: false) }
            let directory = SystemFile.directory(of: path)
            guard access(directory, W_OK | X_OK) == 0 else { throw LogFile.error("creation", path) }
            return
        }
        try file.lock(exclusive: false, timeout: lockTimeout)
        _ = try chainEnd(of: file, size: Int64(try file.status().st_size), anchor: anchor)
    }

    /// Where the next record goes: its `seq` and `prev`, the file's tail (a torn line to repair),
    /// and the hash of the first record (nil while the log has no complete record).
    struct ChainEnd {
        var seq: Int
        var prev: String
        var firstHash: String?
        var tail: LogFile.Tail
    }

    /// Reads the end of the chain (the last two records, never the whole file) and the first
    /// record, and refuses to extend a chain that is already broken: a last line that is not a
    /// record, a last record whose hash does not match its content, last two records that do not
    /// link, a first record other than the anchored one, or no record at all in a log that was
    /// started. The caller holds the lock.
    func chainEnd(of file: borrowing LogFile, size: Int64, anchor: SecurityLogAnchor?) throws(AuditError) -> ChainEnd {
        let tail = try file.tail(size: size)
        guard let line = tail.lastLine else {
            if let anchor { throw vanished(anchor, emptied: true) }
            return ChainEnd(seq: 1, prev: SecurityRecord.genesisHash, firstHash: nil, tail: tail)
        }
        let refusal = "nothing was appended; run 'cmkctl audit verify' (docs/security-log.md says how to repair it)"
        let last: SecurityRecord
        do {
            last = try SecurityRecord.parse(line: line)
        } catch {
            throw AuditError(.corrupt, "the last record of security log '\(path)' (at byte \(tail.lastLineOffset)) is not a valid record (\(error)); \(refusal)")
        }
        guard last.hash == last.computedHash else {
            throw AuditError(.corrupt, "the last record of security log '\(path)' (seq \(last.seq), at byte \(tail.lastLineOffset)) does not match its hash: it was altered; \(refusal)")
        }
        var firstHash = last.hash
        if tail.lastLineOffset > 0 {
            let before = try file.tail(size: tail.lastLineOffset)
            guard let previousLine = before.lastLine, let previous = try? SecurityRecord.parse(line: previousLine),
                  last.seq == previous.seq + 1, last.prev == previous.computedHash else {
                throw AuditError(.corrupt, "the last two records of security log '\(path)' (ending at byte \(tail.lastLineOffset)) do not form a chain; \(refusal)")
            }
            guard let first = try file.firstLine(), let record = try? SecurityRecord.parse(line: first) else {
                throw AuditError(.corrupt, "the first line of security log '\(path)' is not a valid record; \(refusal)")
            }
            firstHash = record.hash
        } else if last.seq != 1 || last.prev != SecurityRecord.genesisHash {
            throw AuditError(.corrupt, "the only record of security log '\(path)' has seq \(last.seq) and does not start a chain; \(refusal)")
        }
        if let anchor, firstHash != anchor.firstHash {
            throw AuditError(.corrupt, "security log '\(path)' does not start with the record it was started with on \(anchor.created.ISO8601Format()) (\(SecurityLogAnchor.path(for: path))): the log was replaced; \(refusal)")
        }
        return ChainEnd(seq: last.seq + 1, prev: last.hash, firstHash: firstHash, tail: tail)
    }

    /// The error for a log that its anchor says was started but that is gone or holds no record.
    func vanished(_ anchor: SecurityLogAnchor, emptied: Bool) -> AuditError {
        AuditError(.missing, "security log '\(path)' was started on \(anchor.created.ISO8601Format()) (\(SecurityLogAnchor.path(for: path))) "
            + "but \(emptied ? "holds no record any more" : "no longer exists"); nothing was appended. Restore it from a backup; "
            + "if it is lost for good, move the anchor aside to start a new log (docs/security-log.md)")
    }
}
