import ArgumentParser
import CMKAudit
import CMKHost
import Foundation

/// `cmkctl audit`: the tamper-evident security log (SPEC §9).
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "List the security log, verify its hash chain, or sign and prove its Merkle tree.",
        subcommands: [List.self, Verify.self, CheckpointCommand.self, Prove.self, Consistency.self, LogKey.self])

    /// One record as `audit list --json` prints it.
    struct Record: Encodable {
        var seq: Int
        var time: Date
        var event: String
        var actor: String
        var account: String?
        var key: String?
        var version: String?
        var previousVersion: String?
        var details: [String: String]
        var hash: String
        /// True for a record dated before `--since` that the chain puts after listed records
        /// (the clock was stepped back); absent otherwise.
        var outOfOrder: Bool?

        init(_ record: SecurityRecord, outOfOrder: Bool = false) {
            seq = record.seq
            time = record.time
            event = record.event.rawValue
            actor = record.actor.description
            account = record.account
            key = record.key
            version = record.version
            previousVersion = record.previousVersion
            details = record.details
            hash = record.hash
            self.outOfOrder = outOfOrder ? true : nil
        }
    }

    static func log(_ options: GlobalOptions) throws -> SecurityLog {
        SecurityLog(stateDirectory: try options.loadConfiguration().stateDirectory)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List security-log records, oldest first.",
            discussion: """
                With --since, the list starts at the first record dated at or after the time and goes on to the end of the \
                chain: a later record dated earlier (the clock was stepped back) is listed too, marked out of order \
                ("outOfOrder": true in JSON), and a note on stderr names it.
                """)
        @OptionGroup var options: GlobalOptions
        @Option(help: ArgumentHelp("Only records at or after this time: RFC 3339 or 'now'.", valueName: "time")) var since: String?
        @Flag(help: "Print one JSON document.") var json = false

        func run() async throws {
            let since = try since.map { try TimeArgument.parse($0, option: "--since") }
            let listing = try AuditCommand.log(options).listing(since: since)
            let records = listing.records.map { Record($0, outOfOrder: listing.outOfOrder.contains($0.seq)) }
            if !listing.outOfOrder.isEmpty {
                let seqs = listing.outOfOrder.sorted().map(String.init).joined(separator: ", ")
                Output.stderr("cmkctl: note: record(s) seq \(seqs) are dated before --since but come after listed records in the chain "
                    + "(the clock was stepped back); they are listed, marked out of order; `cmkctl audit verify` warns about them\n")
            }
            if json { return try Output.json(records) }
            for record in records {
                var fields = ["\(record.seq)", Output.date(record.time), record.event, record.actor]
                if let account = record.account { fields.append("account=\(account)") }
                if let key = record.key { fields.append("key=\(key)") }
                if let version = record.version { fields.append("version=\(version)") }
                if let previous = record.previousVersion { fields.append("previous=\(previous)") }
                fields += record.details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                if record.outOfOrder == true { fields.append("(out of order: dated before --since)") }
                Output.line(fields.joined(separator: " "))
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify the security log's hash chain, and with --checkpoint that the log only grew since a kept checkpoint.",
            discussion: """
                Exit 0 when the chain holds (a torn last line from a crash is reported, not an error); 1 naming the first \
                broken record, or when a log that was started (security.log.anchor) is missing or empty.

                With --checkpoint FILE (a signed checkpoint kept from `cmkctl audit checkpoint`), also checks the \
                checkpoint's signature with the pinned key (--key, else security.log.key) and that the log's first \
                <size> records still hash to its root: exit 1 naming a TRUNCATED or REWRITTEN log (records removed, \
                reordered, rewritten or inserted), or a checkpoint that is not signed by the key.
                """)
        @OptionGroup var options: GlobalOptions
        @Option(help: ArgumentHelp("A signed checkpoint kept earlier; the log must still be consistent with it.", valueName: "file"))
        var checkpoint: String?
        @Option(help: ArgumentHelp("The pinned verifier key <origin>+<key id>+<key> (default: the one in security.log.key).", valueName: "vkey"))
        var key: String?

        func run() async throws {
            let log = try AuditCommand.log(options)
            let tree = try checkpoint.map { _ throws(AuditError) in try log.tree() }
            let result = try tree?.verification ?? log.verify()
            let kept = try checkpoint.map { try AuditCommand.checkAgainst(checkpointFile: $0, pinnedKey: key, log: log, tree: tree!) }
            let checkpointNote = kept.map { "; \($0.message)" } ?? ""
            for warning in result.warnings { Output.warning("\(log.path): \(warning)") }
            switch result.outcome {
            case .intact:
                Output.line("\(log.path): \(result.verifiedCount) records, chain intact; head hash \(result.headHash)")
            case .tornTail(let torn):
                Output.line("\(log.path): \(result.verifiedCount) records, chain intact; head hash \(result.headHash)")
                Output.line("line \(torn.line) is torn (\(torn.byteCount) bytes at offset \(torn.offset)): a write interrupted by a crash; the next append repairs it")
            case .broken(let broken):
                throw CtlError("\(log.path): BROKEN at \(broken); \(result.verifiedCount) records before it verify (head hash \(result.headHash)), "
                    + "the first \(result.verifiedBytes) bytes; keep a copy of the file, then `truncate -s \(result.verifiedBytes)` it to append again"
                    + checkpointNote)
            case .vanished(let vanished):
                throw CtlError("\(log.path): VANISHED: \(vanished); restore it from a backup (docs/security-log.md)" + checkpointNote)
            }
            if let kept {
                guard kept.ok else { throw CtlError("\(log.path): \(kept.message)") }
                Output.line(kept.message)
            }
        }
    }
}
