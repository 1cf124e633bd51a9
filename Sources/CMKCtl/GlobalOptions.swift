import ArgumentParser
import CMKAccounts
import CMKConfiguration
import CMKDaemon
import Foundation

/// `--config`, shared by every command.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The daemon's configuration file ($CMK_SYNCER_CONFIG overrides the default).", valueName: "path"))
    var config: String = ProcessInfo.processInfo.environment["CMK_SYNCER_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        ?? SyncerConfiguration.defaultPath

    /// The configuration; a missing or invalid file is exit 78 naming the path.
    func loadConfiguration() throws -> SyncerConfiguration {
        try SyncerConfiguration.load(path: config)
    }

    /// The daemon's service graph, as the daemon builds it (vault, accounts, data plane, logs).
    func buildDaemon() async throws -> Daemon {
        try await Daemon.build(configuration: try loadConfiguration())
    }
}

extension Daemon {
    /// The account called `name`, or a usage error listing the configured ones.
    func requireAccount(_ name: String) throws -> Account {
        guard let account = account(named: name) else {
            throw CtlError("no account named \(name) (accounts: \(accounts.map(\.name).joined(separator: ", ")))", exitCode: CMKExitCode.usage)
        }
        return account
    }
}
