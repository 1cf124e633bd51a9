import ArgumentParser
import CMKConfiguration
import CMKCore
import CMKDaemon
import Foundation

/// The entry point: synchronous, so the address-space limit is checked before the Swift runtime
/// starts a thread (under a too small RLIMIT_AS libdispatch would hang silently instead).
@main
enum Entry {
    static func main() {
        AddressSpace.checkAtStart()
        Task {
            await CMKSyncerCommand.main()
            exit(0)
        }
        dispatchMain()
    }
}

/// `cmk-syncer`: keeps storage accounts bound to the newest usable root-key version.
struct CMKSyncerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cmk-syncer",
        abstract: "Keep storage accounts encrypted under the newest usable version of the customer's root key.",
        discussion: """
            Exit codes: 0 ok, 1 failure, 2 usage, 3 not in sync, 4 key pulled or account suspended, 78 configuration.
            Signals: SIGUSR1 runs a pass now; SIGHUP rereads the configuration and runs a pass; SIGTERM/SIGINT stop gracefully.
            """,
        version: CMKVersion.current,
        subcommands: [Run.self, CheckConfig.self],
        defaultSubcommand: Run.self)
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The configuration file.")
    var config: String = SyncerConfiguration.defaultPath
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon in the foreground (the default).")

    @OptionGroup var options: ConfigOption

    @Flag(help: "Run one pass and exit: 0 when every account is in sync, 3 not in sync, 4 key pulled, 1 critical.")
    var once = false

    @Option(help: "Log format: auto (journal when stderr is the journal, text otherwise), journal, text or json.")
    var logFormat: DaemonMain.LogFormat?

    func run() async throws {
        let code = await DaemonMain.run(configPath: options.config, once: once, logFormat: logFormat)
        if code != 0 { throw ExitCode(code) }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-config", abstract: "Validate the configuration file and exit (0 valid, 78 invalid).")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let code = DaemonMain.checkConfig(path: options.config)
        if code != 0 { throw ExitCode(code) }
    }
}

extension DaemonMain.LogFormat: ExpressibleByArgument {}
