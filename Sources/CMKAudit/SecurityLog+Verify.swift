import Foundation

extension SecurityLog {
    /// Checks the whole chain and names the first broken record.
    ///
    /// For each line, in order: it must parse as a record in canonical form, its `hash` must be
    /// the SHA-256 of its canonical encoding, its `seq` must be the previous one plus one (1 for
    /// the first), and its `prev` the previous record's hash (64 zeros for the first). A record
    /// older than its predecessor is only a warning. A log that does not exist is intact and empty.
    ///
    /// Throws only when the log cannot be read (`.permissions`, `.io`, `.lockTimeout`); a broken
    /// chain is a verdict, not an error.
    public func verify() throws(AuditError) -> VerificationResult {
        try verify(eachLine: nil)
    }

    /// ``verify()``, also handing every newline-terminated line (without its newline) to
    /// `eachLine`, in file order, whether or not the chain holds there: the Merkle tree's leaves.
    func verify(eachLine: ((ArraySlice<UInt8>) -> Void)?) throws(AuditError) -> VerificationResult {
        let anchor = try SecurityLogAnchor.read(for: path)
        guard let file = try LogFile.openForReading(path) else {
            let outcome: VerificationResult.Outcome = anchor.map { .vanished(.init(started: $0.created, emptied: false)) } ?? .intact
            return VerificationResult(outcome: outcome, verifiedCount: 0, headHash: SecurityRecord.genesisHash, warnings: [])
        }
        try file.lock(exclusive: false, timeout: lockTimeout)
        var state = ChainState()
        var broken: VerificationResult.BrokenRecord?
        var verifiedBytes: Int64 = 0
        let torn = try file.forEachLine { (number, offset, line) throws(AuditError) in
            eachLine?(line)
            guard broken == nil else { return }
            broken = state.check(line: line, number: number)
            if broken == nil, number == 1, let anchor, state.head != anchor.firstHash {
                broken = .init(line: 1, seq: 1, problem: .notTheAnchoredFirstRecord(anchored: anchor.firstHash, found: state.head))
            }
            if broken == nil { verifiedBytes = offset + Int64(line.count) + 1 }
        }
        let outcome: VerificationResult.Outcome
        if let broken {
            outcome = .broken(broken)
        } else if let anchor, state.count == 0 {
            outcome = .vanished(.init(started: anchor.created, emptied: true))
        } else if let torn {
            outcome = .tornTail(.init(offset: torn.offset, byteCount: torn.bytes.count, line: state.count + 1))
        } else {
            outcome = .intact
        }
        return VerificationResult(outcome: outcome, verifiedCount: state.count, headHash: state.head, warnings: state.warnings,
                                  verifiedBytes: verifiedBytes)
    }
}

/// The running state of a verification pass.
private struct ChainState {
    var count = 0
    var head = SecurityRecord.genesisHash
    var lastTime: Date?
    var warnings: [VerificationResult.Warning] = []

    /// Checks one line against the chain so far; returns the problem or advances the chain.
    mutating func check(line: ArraySlice<UInt8>, number: Int) -> VerificationResult.BrokenRecord? {
        let record: SecurityRecord
        do {
            record = try SecurityRecord.parse(line: line)
        } catch {
            return .init(line: number, seq: nil, problem: .malformed(error.description))
        }
        let computed = record.computedHash
        if computed != record.hash {
            return .init(line: number, seq: record.seq, problem: .hashMismatch(stored: record.hash, computed: computed))
        }
        if record.seq != count + 1 {
            return .init(line: number, seq: record.seq, problem: .seqGap(expected: count + 1, found: record.seq))
        }
        if record.prev != head {
            return .init(line: number, seq: record.seq, problem: .prevMismatch(expected: head, found: record.prev))
        }
        if let lastTime, record.time < lastTime {
            warnings.append(.timeWentBackwards(seq: record.seq, line: number))
        }
        if record.event == .logGap {
            warnings.append(.recordsLost(seq: record.seq, line: number, count: record.details["lost"] ?? "?",
                                         from: record.details["first_lost"] ?? "?", to: record.details["last_lost"] ?? "?"))
        }
        count += 1
        head = record.hash
        lastTime = record.time
        return nil
    }
}
