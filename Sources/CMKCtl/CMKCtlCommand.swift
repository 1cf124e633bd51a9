import ArgumentParser
import CMKCore
import CMKHost
import Foundation

/// `cmkctl`: the operator CLI (SPEC §8). The executable's `main.swift` only calls ``runAndExit(arguments:)``.
public struct CMKCtlCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cmkctl",
        abstract: "Operate cmk-syncer: status, passes on demand, root-key versions, accounts, data and the security log.",
        discussion: """
            Every command reads the daemon's configuration (--config, or $CMK_SYNCER_CONFIG, or \
            /etc/cmk-syncer/cmk-syncer.yaml). --json prints one JSON document (pretty, sorted keys, \
            ISO-8601 dates). Errors go to stderr as 'cmkctl: <message>'.

            Exit codes:
              0   ok
              1   failure (a critical pass, a broken security log, no daemon, a status
                  report that is not current; see cmkctl status --help)
              2   usage (bad arguments, unknown account or version)
              3   not every account is in sync
              4   the key is pulled or the account is suspended
              78  the configuration is missing or invalid

            Shell completions: cmkctl --generate-completion-script bash|zsh|fish
            """,
        version: CMKVersion.current,
        subcommands: [StatusCommand.self, SyncCommand.self, KeysCommand.self, AccountsCommand.self, DataCommand.self, AuditCommand.self,
                      AdminsCommand.self, IdentitiesCommand.self, VaultCommand.self])

    public init() {}

    /// Parses the arguments, runs the command and exits: errors become `cmkctl: <message>` on
    /// stderr with the documented exit code; usage errors exit 2.
    public static func runAndExit(arguments: [String]? = nil) async -> Never {
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Foundation.exit(CMKExitCode.ok)
        } catch let error as CtlError {
            Output.error(error.message)
            Foundation.exit(error.exitCode)
        } catch let error as ExitCode {
            Foundation.exit(error.rawValue)
        } catch {
            if let (message, code) = CtlError.classify(error) {
                Output.error(message)
                Foundation.exit(code)
            }
            if exitCode(for: error) == .validationFailure {
                Output.stderr(fullMessage(for: error) + "\n")
                Foundation.exit(CMKExitCode.usage)
            }
            exit(withError: error)
        }
    }
}
