import ArgumentParser
import CMKConfiguration
import CMKCore
import CMKSystemd
import CMKVaultService
import Dispatch
import Foundation
import Logging

/// `cmk-vault`: the customer's vault service (docs/vault-service.md, man page cmk-vault(8)).
@main
struct VaultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cmk-vault",
        abstract: "The customer's vault service: CMK administrators, service-principal keys, 1-hour tokens over HTTPS.",
        discussion: """
            Runs under systemd as cmk-vault.service, started by cmk-vault.socket (Type=notify). Administrators \
            and platform identities are added on this host with `cmkctl admins add` and `cmkctl identities add`.

            Exit codes: 0 stopped cleanly; 1 could not start or failed; 78 the configuration or a file it names is invalid.
            """,
        version: CMKVersion.current,
        subcommands: [Run.self, CheckConfig.self],
        defaultSubcommand: Run.self)
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The configuration file.", valueName: "path"))
    var config: String = ProcessInfo.processInfo.environment["CMK_VAULT_CONFIG"] ?? VaultServiceConfiguration.defaultConfigurationPath
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve until SIGTERM or SIGINT (the default).")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        StandardError.ignoreWriteSignals()
        let environment = ProcessInfo.processInfo.environment
        let configuration: VaultServiceConfiguration
        do {
            configuration = try VaultServiceConfiguration.load(path: options.config, environment: environment)
        } catch {
            _ = StandardError.write("cmk-vault: invalid configuration: \(error)\n")
            if JournalLogHandler.stderrIsJournal() {
                var metadata: Logger.Metadata = ["message_id": .string(VaultMessageID.configurationInvalid), "error": "\(error)", "config": .string(options.config)]
                if let key = error.keyPath { metadata["cmk_config_key"] = .string(key) }
                Logger(label: "cmk-vault", factory: { _ in JournalLogHandler(identifier: "cmk-vault") })
                    .critical("Invalid configuration; not starting.", metadata: metadata)
            }
            SystemdNotifier().errno(EINVAL, status: "invalid configuration: \(error)")
            throw ExitCode(78)
        }
        bootstrapLogging(configuration.logging)
        let logger = Logger(label: "cmk-vault")
        let server = VaultServer(configuration: configuration, logger: logger)
        let task = Task { try await server.run() }
        let signals = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                logger.notice("Stopping on a signal.", metadata: ["cmk_signal": .stringConvertible(number)])
                task.cancel()
            }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        do {
            try await task.value
        } catch let error as VaultServer.StartError {
            _ = StandardError.write("cmk-vault: cannot start: \(error)\n")
            logger.critical("The vault service cannot start.", metadata: ["message_id": .string(VaultMessageID.startFailed), "error": .string(error.description)])
            SystemdNotifier().errno(error.exitCode == 78 ? EINVAL : EIO, status: "cannot start: \(error)")
            throw ExitCode(error.exitCode)
        } catch {
            _ = StandardError.write("cmk-vault: failed: \(error)\n")
            logger.critical("The vault service failed.", metadata: ["message_id": .string(VaultMessageID.startFailed), "error": .string("\(error)")])
            throw ExitCode(1)
        }
        logger.notice("The vault service stopped.")
    }

    private func bootstrapLogging(_ logging: SyncerConfiguration.Logging) {
        let useJournal = logging.format == .journal || (logging.format == .auto && JournalLogHandler.stderrIsJournal())
        let level = Logger.Level(rawValue: logging.level) ?? .info
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = useJournal ? JournalLogHandler(identifier: "cmk-vault")
                : TextLogHandler(label: label, style: logging.format == .json ? .json : .text)
            handler.logLevel = level
            return handler
        }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-config", abstract: "Validate the configuration file and exit (0 valid, 78 invalid).")
    @OptionGroup var options: ConfigOption

    func run() throws {
        do {
            let configuration = try VaultServiceConfiguration.load(path: options.config)
            print("\(options.config): valid (listen \(configuration.listen), public-url \(configuration.publicURL), state \(configuration.stateDirectory))")
        } catch {
            _ = StandardError.write("cmk-vault: \(error)\n")
            throw ExitCode(78)
        }
    }
}

