import ArgumentParser
import CMKAccounts
import CMKCore
import CMKHost
import Foundation

/// `cmkctl data`: put and get objects through the envelope format, for checks and demos, and
/// sweep an account so that every object is under the active DEK.
struct DataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Put, get and re-encrypt objects of an account.",
        discussion: "A suspended account (key pulled) refuses reads and writes: exit 4. A vault that throttles for longer than cache.read-wait (default 10s) fails the command at once: exit 1, saying how long the vault asked to wait.",
        subcommands: [Put.self, Get.self, Sweep.self])

    static let chunkSize = 1 << 20

    static func objectName(_ text: String) throws -> ObjectName {
        do { return try ObjectName(text) } catch let error as StorageError {
            throw CtlError(error.reason, exitCode: CMKExitCode.usage)
        }
    }

    /// Object names may start with '-' (`-dash`), which reads like options: `-dash` would be the
    /// flags -d -a -s -h, and -h asked for help (exit 0, nothing read). So `put` and `get` take
    /// help as --help only, and anything else that looks like an option is a usage error (exit 2)
    /// saying that such a name goes after '--'.
    static let dashedNameHelp = "An object name that starts with '-' goes after '--', which ends the options: cmkctl data get files-1 -- -name. Help is --help (-h would be a name)."

    /// Refuses a missing object name and arguments that look like options.
    static func validateObject(_ object: String?, unrecognized: [String], command: String) throws {
        if let first = unrecognized.first {
            guard first.hasPrefix("-") else { throw ValidationError("Unexpected argument '\(first)'.") }
            throw ValidationError("'\(first)' is not an option of 'cmkctl data \(command)' (help is --help). An object name that starts with '-' goes after '--': cmkctl data \(command) ACCOUNT -- \(first)")
        }
        guard object != nil else {
            throw ValidationError("Missing expected argument '<object>'. An object name that starts with '-' goes after '--': cmkctl data \(command) ACCOUNT -- -name")
        }
    }

    /// Says on stderr that an object under an older DEK stays there (the read succeeded).
    static func warnIfNotReencrypted(_ outcome: DataPlane.ReadOutcome) {
        if let failure = outcome.reencryptionFailure { Output.warning(failure) }
    }

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypt a file (or stdin) into an object under the account's active DEK.",
            usage: "cmkctl data put [--config <path>] <account> [--] <object> [<file>]",
            discussion: DataCommand.dashedNameHelp,
            helpNames: [.long])
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The account.") var account: String
        @Argument(help: "The object's name (after '--' when it starts with '-').") var object: String?
        @Argument(help: ArgumentHelp("The file to store; '-' (the default) reads stdin.", valueName: "file")) var file: String = "-"
        @Argument(parsing: .allUnrecognized, help: .hidden) var unrecognized: [String] = []

        func validate() throws { try DataCommand.validateObject(object, unrecognized: unrecognized, command: "put") }

        func run() async throws {
            let object = object ?? ""
            let name = try DataCommand.objectName(object)
            let daemon = try await options.buildDaemon()
            let target = try daemon.requireAccount(account)
            let input: FileHandle
            if file == "-" {
                input = FileHandle.standardInput
            } else {
                guard let handle = FileHandle(forReadingAtPath: file) else {
                    throw CtlError("cannot read \(file): \(String(cString: strerror(errno)))")
                }
                input = handle
            }
            defer { if file != "-" { try? input.close() } }
            var total = 0
            let revision = try await daemon.dataPlane.put(target, name) {
                guard let data = try input.read(upToCount: DataCommand.chunkSize), !data.isEmpty else { return nil }
                total += data.count
                return [UInt8](data)
            }
            Output.line("stored \(account)/\(object): \(total) bytes, revision \(revision)")
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decrypt an object to stdout (or a file); an object under an older DEK is re-encrypted on the way.",
            usage: "cmkctl data get [--config <path>] [--out <file>] <account> [--] <object>",
            discussion: """
                --out writes a new or regular file through a temporary file renamed over it at the end (a symbolic \
                link is followed; a link to nothing is refused); a device or FIFO (/dev/null, a named pipe) is \
                written in place, never replaced. When the object cannot be rewritten under the active DEK (a full \
                or read-only disk) the read is served all the same, with a warning on stderr.

                \(DataCommand.dashedNameHelp)
                """,
            helpNames: [.long])
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The account.") var account: String
        @Argument(help: "The object's name (after '--' when it starts with '-').") var object: String?
        @Option(name: .shortAndLong, help: ArgumentHelp("Write to this file instead of stdout.", valueName: "file")) var out: String?
        @Argument(parsing: .allUnrecognized, help: .hidden) var unrecognized: [String] = []

        func validate() throws { try DataCommand.validateObject(object, unrecognized: unrecognized, command: "get") }

        func run() async throws {
            let object = object ?? ""
            let name = try DataCommand.objectName(object)
            let daemon = try await options.buildDaemon()
            let target = try daemon.requireAccount(account)
            guard let out else {
                let stdout = FileHandle.standardOutput
                let outcome = try await daemon.dataPlane.get(target, name) { try stdout.write(contentsOf: Data($0)) }
                DataCommand.warnIfNotReencrypted(outcome)
                if outcome.reencrypted {
                    let active = try await target.driver.readKeyring()?.activeDEK
                    Output.stderr("cmkctl: \(account)/\(object) was under DEK \(outcome.dek); re-encrypted under the active DEK \(active.map(String.init(describing:)) ?? "?")\n")
                }
                return
            }
            // A partial object must never look complete, and a device or FIFO is never replaced
            // by a file: see OutputFile.
            let file = try OutputFile.open(out)
            do {
                let outcome = try await daemon.dataPlane.get(target, name) { try file.write($0) }
                try file.commit()
                DataCommand.warnIfNotReencrypted(outcome)
                Output.stderr("\(account)/\(object): \(outcome.bytes) bytes written to \(out)\(outcome.reencrypted ? " (re-encrypted under the active DEK)" : "")\n")
            } catch {
                file.abandon()
                if file.writesInPlace { Output.warning("\(out) received part of \(account)/\(object) before the read failed") }
                throw error
            }
        }
    }

    struct Sweep: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-encrypt every object of the account still under an older DEK.",
            discussion: "Exit 1 when some objects failed (they are listed), or at once when the vault is throttling longer than cache.read-wait; running it again resumes cheaply.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The account.") var account: String

        func run() async throws {
            let daemon = try await options.buildDaemon()
            let target = try daemon.requireAccount(account)
            let terminal = isatty(1) == 1
            var lastLine = Date.distantPast
            let result = try await daemon.dataPlane.sweep(target) { progress in
                if terminal {
                    Output.raw("\r" + SweepProgressBar.render(progress))
                } else if progress.examined == progress.total || Date().timeIntervalSince(lastLine) >= 1 {
                    lastLine = Date()
                    Output.line("\(progress.examined)/\(progress.total) examined, \(progress.reencrypted) re-encrypted, \(progress.alreadyCurrent) already current, \(progress.failed.count) failed")
                }
            }
            if terminal { Output.raw("\n") }
            Output.line("swept \(account): \(result.examined) objects, \(result.reencrypted) re-encrypted, \(result.alreadyCurrent) already current, \(result.failed.count) failed")
            for (object, reason) in result.failed.sorted(by: { $0.key < $1.key }) { Output.error("\(object): \(reason)") }
            if !result.failed.isEmpty { throw ExitCode(CMKExitCode.failure) }
        }
    }
}

/// The terminal progress bar of `data sweep`.
enum SweepProgressBar {
    static func render(_ progress: DataPlane.SweepProgress, width: Int = 30) -> String {
        let fraction = progress.total == 0 ? 1 : Double(progress.examined) / Double(progress.total)
        let filled = Int((fraction * Double(width)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "] "
            + "\(progress.examined)/\(progress.total)  re-encrypted \(progress.reencrypted)  failed \(progress.failed.count)"
    }
}
