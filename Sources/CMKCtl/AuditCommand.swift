import ArgumentParser
import CMKAudit
import CMKDaemon
import Foundation

/// `cmkctl audit`: the tamper-evident security log (SPEC §9).
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "List the security log or verify its hash chain.",
        subcommands: [List.self, Verify.self])

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

        init(_ record: SecurityRecord) {
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
        }
    }

    static func log(_ options: GlobalOptions) throws -> SecurityLog {
        SecurityLog(stateDirectory: try options.loadConfiguration().stateDirectory)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List security-log records, oldest first.")
        @OptionGroup var options: GlobalOptions
        @Option(help: ArgumentHelp("Only records at or after this time: RFC 3339 or 'now'.", valueName: "time")) var since: String?
        @Flag(help: "Print one JSON document.") var json = false

        func run() async throws {
            let since = try since.map { try TimeArgument.parse($0, option: "--since") }
            let records = try AuditCommand.log(options).records(since: since).map(Record.init)
            if json { return try Output.json(records) }
            for record in records {
                var fields = ["\(record.seq)", Output.date(record.time), record.event, record.actor]
                if let account = record.account { fields.append("account=\(account)") }
                if let key = record.key { fields.append("key=\(key)") }
                if let version = record.version { fields.append("version=\(version)") }
                if let previous = record.previousVersion { fields.append("previous=\(previous)") }
                fields += record.details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                Output.line(fields.joined(separator: " "))
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify the security log's hash chain.",
            discussion: """
                Exit 0 when the chain holds (a torn last line from a crash is reported, not an error); 1 naming the first \
                broken record, or when a log that was started (security.log.anchor) is missing or empty.
                """)
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let log = try AuditCommand.log(options)
            let result = try log.verify()
            for warning in result.warnings { Output.warning("\(log.path): \(warning)") }
            switch result.outcome {
            case .intact:
                Output.line("\(log.path): \(result.verifiedCount) records, chain intact; head hash \(result.headHash)")
            case .tornTail(let torn):
                Output.line("\(log.path): \(result.verifiedCount) records, chain intact; head hash \(result.headHash)")
                Output.line("line \(torn.line) is torn (\(torn.byteCount) bytes at offset \(torn.offset)): a write interrupted by a crash; the next append repairs it")
            case .broken(let broken):
                throw CtlError("\(log.path): BROKEN at \(broken); \(result.verifiedCount) records before it verify (head hash \(result.headHash)), "
                    + "the first \(result.verifiedBytes) bytes; keep a copy of the file, then `truncate -s \(result.verifiedBytes)` it to append again")
            case .vanished(let vanished):
                throw CtlError("\(log.path): VANISHED: \(vanished); restore it from a backup (docs/security-log.md)")
            }
        }
    }
}
