import ArgumentParser
import CMKAccounts
import CMKConfiguration
import CMKHost
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
    func buildDaemon(environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> Daemon {
        let configuration = try loadConfiguration()
        try Self.requireMasterKeyReachable(configuration, environment: environment)
        return try await Daemon.build(configuration: configuration, environment: environment)
    }

    /// A local vault whose master key is a systemd credential opens only inside the service: the
    /// unit's `LoadCredential=` hands the key to the daemon, never to a shell. The configuration
    /// knows when the credential is out of reach (``SyncerConfiguration/masterKeyPath(environment:)``);
    /// cmkctl says so in its own words, instead of the daemon's advice to add `LoadCredential=` to
    /// a unit that has it.
    static func requireMasterKeyReachable(_ configuration: SyncerConfiguration, environment: [String: String]) throws {
        guard configuration.vault.provider == .local else { return }
        let result = Result { () throws(ConfigurationError) in try configuration.masterKeyPath(environment: environment) }
        if case .failure(let error) = result, error.code == .credentialsDirectoryMissing {
            let name = error.keyPath ?? "vault.local.master-key-credential"
            throw CtlError("""
                this command opens the local vault, and its master key is a systemd credential \
                (\(name) in \(configuration.file)), which only the service receives. \
                `cmkctl status`, `sync` and `audit` work from a shell; for keys, accounts and data use a configuration \
                whose vault.local.master-key-file names the key, run as the vault's owner (docs/packaging.md, "Known limitation")
                """, exitCode: CMKExitCode.configuration)
        }
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
