import Foundation

/// The verdict of ``SecurityLog/verify()``: how many records form an intact chain, and how the
/// log ends: cleanly, with a torn last line (a crash mid-write, repaired by the next append), or
/// at the first broken record (tampering or corruption).
public struct VerificationResult: Sendable, Hashable {
    /// How the log ends.
    public enum Outcome: Sendable, Hashable {
        /// Every line is a record and the chain holds.
        case intact
        /// The chain holds, but the file ends in bytes without a newline: a write interrupted by
        /// a crash. Not evidence of tampering; the next append truncates (or completes) it.
        case tornTail(TornTail)
        /// The first record that does not belong to the chain.
        case broken(BrokenRecord)
        /// The log was started (its anchor says so) but is missing or holds no record: deleted,
        /// truncated to nothing, or replaced by an empty file.
        case vanished(Vanished)
    }

    /// A log that its anchor says was started but that is gone or empty.
    public struct Vanished: Sendable, Hashable, CustomStringConvertible {
        /// When the log was started, from its anchor.
        public let started: Date
        /// True when the file exists but holds no record; false when it does not exist.
        public let emptied: Bool

        public init(started: Date, emptied: Bool) {
            self.started = started
            self.emptied = emptied
        }

        public var description: String {
            "the log was started on \(started.ISO8601Format()) but \(emptied ? "holds no record any more" : "no longer exists")"
        }
    }

    /// Bytes after the last newline.
    public struct TornTail: Sendable, Hashable {
        /// Byte offset where the torn line starts.
        public let offset: Int64
        /// How many bytes it has.
        public let byteCount: Int
        /// Its line number (1-based).
        public let line: Int

        public init(offset: Int64, byteCount: Int, line: Int) {
            self.offset = offset
            self.byteCount = byteCount
            self.line = line
        }
    }

    /// The first line that breaks the chain, and why.
    public struct BrokenRecord: Sendable, Hashable, CustomStringConvertible {
        /// Line number in the file, 1-based.
        public let line: Int
        /// The `seq` the line claims, if it parsed.
        public let seq: Int?
        /// What is wrong with it.
        public let problem: Problem

        public init(line: Int, seq: Int?, problem: Problem) {
            self.line = line
            self.seq = seq
            self.problem = problem
        }

        public var description: String {
            "line \(line)\(seq.map { " (seq \($0))" } ?? ""): \(problem)"
        }
    }

    /// Why a record breaks the chain.
    public enum Problem: Sendable, Hashable, CustomStringConvertible {
        /// The line is not JSON, lacks a field, has an unexpected one, or is not canonical.
        case malformed(String)
        /// The stored `hash` is not the hash of the record's content: the record was edited.
        case hashMismatch(stored: String, computed: String)
        /// `seq` is not the previous one plus one: a record was removed, inserted or moved.
        case seqGap(expected: Int, found: Int)
        /// `prev` is not the previous record's hash: a record before it was removed, replaced or moved.
        case prevMismatch(expected: String, found: String)
        /// The first record is not the one the log was started with (its anchor names another
        /// hash): the log was replaced by another chain.
        case notTheAnchoredFirstRecord(anchored: String, found: String)

        public var description: String {
            switch self {
            case .malformed(let why): return "malformed record: \(why)"
            case .hashMismatch(let stored, let computed): return "hash mismatch: stored \(stored), content hashes to \(computed)"
            case .seqGap(let expected, let found): return "sequence gap: expected seq \(expected), found \(found)"
            case .prevMismatch(let expected, let found): return "chain broken: prev is \(found), previous record hashes to \(expected)"
            case .notTheAnchoredFirstRecord(let anchored, let found):
                return "log replaced: the first record hashes to \(found), but the log was started with \(anchored) (security.log.anchor)"
            }
        }
    }

    /// Something odd that does not break the chain.
    public enum Warning: Sendable, Hashable, CustomStringConvertible {
        /// A record is older than the one before it (the clock was stepped back).
        case timeWentBackwards(seq: Int, line: Int)
        /// A `log-gap` record: the daemon could not write some records (the journal has them).
        case recordsLost(seq: Int, line: Int, count: String, from: String, to: String)

        public var description: String {
            switch self {
            case .timeWentBackwards(let seq, let line): return "line \(line) (seq \(seq)): time is earlier than the previous record's"
            case .recordsLost(let seq, let line, let count, let from, let to):
                return "line \(line) (seq \(seq)): \(count) record(s) from \(from) to \(to) were never written (log-gap); the journal has them"
            }
        }
    }

    /// How the log ends.
    public let outcome: Outcome
    /// Records that verified, from the first up to the end or the break.
    public let verifiedCount: Int
    /// The hash of the last verified record (64 zeros if none): an operator can note it
    /// elsewhere to detect a later truncation of the whole tail.
    public let headHash: String
    /// Oddities before the end or the break.
    public let warnings: [Warning]
    /// The length in bytes of the part of the file that verified (up to and including the last
    /// verified record's newline): cutting a broken log to this length leaves an intact chain.
    public let verifiedBytes: Int64

    public init(outcome: Outcome, verifiedCount: Int, headHash: String, warnings: [Warning], verifiedBytes: Int64 = 0) {
        self.outcome = outcome
        self.verifiedCount = verifiedCount
        self.headHash = headHash
        self.warnings = warnings
        self.verifiedBytes = verifiedBytes
    }

    /// True unless a record is broken or the log vanished (a torn tail is not tampering).
    public var chainHolds: Bool {
        switch outcome {
        case .intact, .tornTail: return true
        case .broken, .vanished: return false
        }
    }
}
