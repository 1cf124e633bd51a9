import CMKConfiguration
import CMKCore
import CMKEnvelope
import CMKMetrics
import CMKSystemd
import Foundation
import Logging
import ServiceLifecycle

/// What the `cmk-syncer` executable does, as a library function tests can call.
public enum DaemonMain {
    /// How log lines are written.
    public enum LogFormat: String, CaseIterable, Sendable {
        case auto, journal, text, json
    }

    /// Runs the daemon in the foreground until SIGTERM/SIGINT (or after one pass with `once`).
    /// Returns the process exit code.
    public static func run(configPath: String, once: Bool, logFormat: LogFormat?) async -> Int32 {
        let environment = ProcessInfo.processInfo.environment
        // A log line that cannot be written (full disk, ulimit -f, closed reader) is dropped, never fatal.
        StandardError.ignoreWriteSignals()
        ProcessMemory.configure(environment: environment)
        // Key material stays out of core dumps and out of reach of this user's other processes (docs/systemd.md).
        let undumpable = ProcessMemory.forbidCoreDumps()
        let secretMemory = Libcrypto.useSecretMemory()
        let configuration: SyncerConfiguration
        do {
            configuration = try SyncerConfiguration.load(path: configPath, environment: environment)
            if !once, let interval = SystemdNotifier().watchdogInterval() {
                try configuration.checkWatchdog(interval: interval, source: "WATCHDOG_USEC")
            }
        } catch {
            bootstrapLogging(format: logFormat ?? .auto, level: .info)
            reportConfigurationError(error, path: configPath, format: logFormat ?? .auto)
            return CMKExitCode.configuration
        }
        bootstrapLogging(format: logFormat ?? LogFormat(rawValue: configuration.logging.format.rawValue) ?? .auto,
                         level: Logger.Level(rawValue: configuration.logging.level) ?? .info)
        let logger = Logger(label: "cmk-syncer")
        if !undumpable || !secretMemory || !SecretMemory.excludedFromCoreDumps {
            logger.warning("Key material may appear in core dumps of this process.", metadata: [
                "undumpable": "\(undumpable)", "libcrypto_secret_memory": "\(secretMemory)",
                "madvise_dontdump": "\(SecretMemory.excludedFromCoreDumps)",
            ])
        }
        let notifier = SystemdNotifier()
        if let refusal = DescriptorBudget.prepare(configuration, logger: logger) {
            notifier.errno(EMFILE, status: "failed to start: \(refusal)")
            return CMKExitCode.configuration
        }
        let lock: StateDirectoryLock
        do {
            try SystemFile.makeDirectories(configuration.stateDirectory, mode: 0o700)
            lock = try StateDirectoryLock(stateDirectory: configuration.stateDirectory)
        } catch {
            logger.critical("Cannot start: another cmk-syncer runs on this state directory.", metadata: [
                "error": "\(error)", "message_id": "\(MessageID.alreadyRunning)", "cmk_state_directory": "\(configuration.stateDirectory)",
            ])
            notifier.errno(EBUSY, status: "failed to start: \(error)")
            return CMKExitCode.failure
        }
        defer { withExtendedLifetime(lock) {} }
        let daemon: Daemon
        do {
            daemon = try await Daemon.build(configuration: configuration, environment: environment)
        } catch {
            let category = (error as? any CategorizedError)?.category
            logger.critical("Cannot start: the service could not be built.", metadata: [
                "error": "\(error)", "message_id": "\(MessageID.configurationInvalid)", "config": "\(configPath)",
            ])
            notifier.errno(category == .configuration ? EINVAL : EIO, status: "failed to start: \(error)")
            return category == .configuration ? CMKExitCode.configuration : CMKExitCode.failure
        }
        let scheduler = Scheduler()
        var receiver: EventReceiver?
        if !once, let events = configuration.events {
            do {
                receiver = try await startEventReceiver(events, configuration: configuration, environment: environment, scheduler: scheduler, logger: logger)
            } catch {
                logger.critical("Cannot start: the key event receiver cannot listen.", metadata: [
                    "error": "\(error)", "message_id": "\(MessageID.configurationInvalid)", "cmk_events_listen": "\(events.listen)",
                ])
                notifier.errno(EINVAL, status: "failed to start: \(error)")
                return CMKExitCode.configuration
            }
        }
        // Installed before the first pass, so every vault call of the process is counted.
        let metrics = once ? nil : configuration.metrics.map { _ in DaemonMetrics() }
        if let metrics { VaultObservation.install(metrics) }
        let service = SyncService(
            daemon: daemon,
            reloader: {
                let fresh = try SyncerConfiguration.load(path: configPath, environment: environment)
                return try await Daemon.build(configuration: fresh, environment: environment)
            },
            scheduler: scheduler, notifier: notifier, logger: logger, once: once, metrics: metrics)
        var endpoint: MetricsEndpoint?
        if let metrics, let settings = configuration.metrics {
            let candidate = MetricsEndpoint(listen: settings.listen, logger: logger) {
                let (cache, probe) = service.scrapeSources
                return metrics.exposition(cache: cache, probe: probe)
            }
            do {
                try await candidate.start()
                endpoint = candidate
            } catch {
                await receiver?.close()
                logger.critical("Cannot start: the metrics endpoint cannot listen.", metadata: [
                    "error": "\(error)", "message_id": "\(MessageID.configurationInvalid)", "cmk_metrics_listen": "\(settings.listen)",
                ])
                notifier.errno(EINVAL, status: "failed to start: \(error)")
                return CMKExitCode.configuration
            }
        }
        let group = ServiceGroup(configuration: .init(
            // Stopped in reverse order: the pools close after the last pass is done with them.
            services: [.init(service: StoragePoolsService(logger: logger)),
                       .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
            await receiver?.close()
            await endpoint?.close()
        } catch {
            await receiver?.close()
            await endpoint?.close()
            logger.critical("The daemon failed.", metadata: ["error": "\(error)"])
            notifier.errno(EIO, status: "failed: \(error)")
            return CMKExitCode.failure
        }
        if once, let report = service.report {
            return CMKExitCode.forReport(report)
        }
        return CMKExitCode.ok
    }

    /// The receiver of `events` (EventReceiver): its secret read now, an accepted event a pass
    /// (`Scheduler.Reason.event`). Not reloaded on SIGHUP: a changed `events` section needs a restart.
    static func startEventReceiver(_ events: SyncerConfiguration.Events, configuration: SyncerConfiguration, environment: [String: String],
                                   scheduler: Scheduler, logger: Logger) async throws -> EventReceiver {
        let secret = try events.secret.read(environment: environment, what: "events.secret")
        let receiver = EventReceiver(settings: .init(listen: events.listen, secret: secret, allowedOrigins: events.allowedOrigins,
                                                     keyName: configuration.vault.key.name),
                                     logger: logger) { scheduler.trigger(.event) }
        try await receiver.start()
        return receiver
    }

    /// Validates a configuration file; prints what is wrong. Returns 0 or 78.
    public static func checkConfig(path: String) -> Int32 {
        do {
            let environment = ProcessInfo.processInfo.environment
            let configuration = try SyncerConfiguration.load(path: path, environment: environment)
            try configuration.checkWatchdog(environment: environment)
            let metrics = configuration.metrics.map { ", metrics on \($0.listen)" } ?? ""
            print("\(path): valid (\(configuration.accounts.count) accounts, vault \(configuration.vault.provider.rawValue), key \(configuration.vault.key)\(metrics))")
            return CMKExitCode.ok
        } catch {
            StandardError.write("cmk-syncer: \(error)\n")
            return CMKExitCode.configuration
        }
    }

    /// ERRNO= carries a real errno (EINVAL), not the exit code: systemd prints it with strerror.
    static func reportConfigurationError(_ error: ConfigurationError, path: String, format: LogFormat) {
        StandardError.write("cmk-syncer: invalid configuration: \(error)\n")
        if format == .journal || (format == .auto && JournalLogHandler.stderrIsJournal()) {
            var metadata: Logger.Metadata = ["error": "\(error)", "message_id": "\(MessageID.configurationInvalid)", "config": "\(path)"]
            if let key = error.keyPath { metadata["cmk_config_key"] = "\(key)" }
            Logger(label: "cmk-syncer").critical("Invalid configuration; not starting.", metadata: metadata)
        }
        SystemdNotifier().errno(EINVAL, status: "invalid configuration: \(error)")
    }

    /// Journal when stderr is the journal (or asked for), readable text otherwise, JSON on request.
    static func bootstrapLogging(format: LogFormat, level: Logger.Level) {
        let useJournal = format == .journal || (format == .auto && JournalLogHandler.stderrIsJournal())
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler
            if useJournal {
                handler = JournalLogHandler(identifier: "cmk-syncer")
            } else {
                handler = TextLogHandler(label: label, style: format == .json ? .json : .text)
            }
            handler.logLevel = level
            return handler
        }
    }
}
