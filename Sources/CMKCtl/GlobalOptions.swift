import ArgumentParser
import CMKAccounts
import CMKConfiguration
import CMKDaemon
import Foundation

/// `--config`, shared by every command.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The daemon's configuration file. Default: $CMK_SYNCER_CONFIG, else /etc/cmk-syncer/cmk-syncer.yaml, else ./.cmk-demo/cmk-syncer.yaml (the embedded default that `make run` creates) when only that exists.",
        valueName: "path"))
    var config: String = Self.defaultConfigPath()

    /// `$CMK_SYNCER_CONFIG`, the system path, or — only when the system path does not exist — the
    /// embedded default of a `make run` in the current directory.
    static func defaultConfigPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit = environment["CMK_SYNCER_CONFIG"], !explicit.isEmpty { return explicit }
        let demo = FileManager.default.currentDirectoryPath + "/.cmk-demo/cmk-syncer.yaml"
        if !FileManager.default.fileExists(atPath: SyncerConfiguration.defaultPath), FileManager.default.fileExists(atPath: demo) {
            return demo
        }
        return SyncerConfiguration.defaultPath
    }

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
