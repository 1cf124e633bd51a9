import CMKAudit
import CMKConfiguration
import CMKCore
import CMKEnvelope
import CMKMetrics
import CMKSyncer
import CMKSystemd
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The daemon's one long-running service: waits for the scheduler, runs passes, writes the state
/// file, logs events to the journal and the security log, and keeps systemd informed (SPEC §7).
public final class SyncService: Service {
    /// Rebuilds the service graph from the configuration file (SIGHUP). Throws a
    /// `ConfigurationError` (or a build error) and leaves the running graph untouched.
    public typealias Reloader = @Sendable () async throws -> Daemon

    private let daemon: Mutex<Daemon>
    private let reloader: Reloader
    private let scheduler: Scheduler
    private let notifier: SystemdNotifier
    private let logger: Logger
    private let events: EventRecorder
    private let stopping = Atomic<Bool>(false)
    private let readySent = Atomic<Bool>(false)
    /// When set, the service stops after its first pass (`cmk-syncer run --once`).
    private let once: Bool
    private let lastReport = Mutex<SyncReport?>(nil)
    /// The key-state probe between passes (`sync.probe-interval`), made in ``run()``; none with `--once`.
    private let probe = Mutex<KeyProbe?>(nil)
    /// Which state files the last attempt failed to write (`daemon.json`, `status.json`): each is
    /// written again at every pass, and the journal hears when it fails and when it works again.
    private let unwritten = Mutex<Set<String>>([])
    private let startedAt = Date()
    /// The Prometheus metrics (`metrics.listen`), when on: told every pass's report.
    private let metrics: DaemonMetrics?

    public init(daemon: Daemon, reloader: @escaping Reloader, scheduler: Scheduler = Scheduler(),
                notifier: SystemdNotifier = SystemdNotifier(), logger: Logger, once: Bool = false, metrics: DaemonMetrics? = nil) {
        self.daemon = Mutex(daemon)
        self.reloader = reloader
        self.scheduler = scheduler
        self.notifier = notifier
        self.logger = logger
        self.events = EventRecorder(logger: logger)
        self.once = once
        self.metrics = metrics
    }

    /// The report of the last pass (for `--once` exit codes).
    public var report: SyncReport? { lastReport.withLock { $0 } }

    /// What a metrics scrape reads besides the recorded values: the running graph's DEK cache and the probe's counts.
    var scrapeSources: (cache: DEKCache?, probe: ProbeStatus?) {
        (daemon.withLock { $0 }.cache, probe.withLock { $0 }?.status)
    }

    public func run() async throws {
        let current = daemon.withLock { $0 }
        lastReport.withLock { $0 = try? current.state.readReport() }
        writeState(current.state.daemonPath) { try current.state.writeDaemonInfo(info(current)) }
        events.security(current, SecurityLogEntry(event: .daemonStarted, key: current.settings.key.name,
                                                   details: ["pid": "\(getpid())", "config": current.configuration.file]))
        logger.info("cmk-syncer started.", metadata: ["config": "\(current.configuration.file)", "accounts": "\(current.accounts.count)",
                                                      "cmk_key_name": "\(current.settings.key.name)"])
        // The SIGHUP handler must be in place before READY=1.
        scheduler.start(handleSignals: !once)
        notifier.extendTimeout(current.configuration.sync.startTimeout + .seconds(10))

        await withDiscardingTaskGroup { group in
            if !once {
                group.addTask { await self.readyDeadline(current.configuration.sync.startTimeout) }
                if let interval = notifier.watchdogInterval() {
                    group.addTask { await self.watchdog(interval: interval) }
                }
                let probe = KeyProbe(scheduler: scheduler, logger: logger, events: events, daemon: { self.daemon.withLock { $0 } },
                                     statusChanged: { self.probeStatusChanged($0) })
                self.probe.withLock { $0 = probe }
                group.addTask { await probe.run() }
            }
            await withGracefulShutdownHandler {
                await self.loop()
            } onGracefulShutdown: {
                self.stopping.store(true, ordering: .relaxed)
                self.notifier.stopping(status: "stopping: finishing the account in flight")
                self.scheduler.finish()
            }
            group.cancelAll()
        }
        let final = daemon.withLock { $0 }
        events.security(final, SecurityLogEntry(event: .daemonStopped, key: final.settings.key.name, details: ["pid": "\(getpid())"]))
        final.state.removeDaemonInfo()
        logger.info("cmk-syncer stopped.")
    }

    private func loop() async {
        for await _ in scheduler.triggers {
            let reasons = scheduler.takePending()
            if reasons.contains(.reload) { await reload() }
            guard !stopping.load(ordering: .relaxed) else { break }
            await runPass(reasons: reasons)
            if once { scheduler.finish(); break }
        }
    }

    private func runPass(reasons: Set<Scheduler.Reason>) async {
        let current = daemon.withLock { $0 }
        scheduler.setBusy(true)
        CrashPoints.hit("pass.start")
        var pass = current.makePass(stopRequested: { self.stopping.load(ordering: .relaxed) },
                                    progress: { self.scheduler.beat() })
        let probe = self.probe.withLock { $0 }
        probe?.prepare(&pass)
        let previous = lastReport.withLock { $0 }
        // Read before the pass starts: a `cmkctl sync` counted here was asked for before this pass.
        let request = current.state.readSyncRequest()
        // Everything the pass awaits beats the heartbeat and sees the stop (vault exchanges, back-offs).
        let pulse = Heartbeat(beat: { self.scheduler.beat() }, stopRequested: { self.stopping.load(ordering: .relaxed) })
        var (report, passEvents) = await Heartbeat.$current.withValue(pulse) { await pass.run(previous: previous?.withoutSecurityLogNote()) }
        scheduler.setBusy(false)
        report.syncRequest = request
        if let now = StateStore.BootInstant.now() { (report.finishedUptime, report.bootID) = (now.seconds, now.bootID) }

        let sync = current.configuration.sync
        let interval = report.state == .keyPulled ? sync.pulledPollInterval : sync.interval
        let next = once ? nil : scheduler.schedule(after: Scheduler.delay(interval: interval, maxJitter: sync.jitter.maximum(for: interval)))
        report.nextPass = next
        // The security log first: whether it can be appended is part of the report.
        await events.finishPass(passEvents, report: &report, previous: previous, daemon: current)
        lastReport.withLock { $0 = report }
        metrics?.passFinished(report, interval: interval)
        probe?.passFinished(report: report)
        if unwritten.withLock({ $0.contains(current.state.daemonPath) }) {
            writeState(current.state.daemonPath) { try current.state.writeDaemonInfo(info(current)) }
        }
        let written = writeState(current.state.statusPath) { try current.state.writeReport(report) }
        var line = StatusLine.make(report, probe: probe?.status)
        if !written { line += "; cannot write status.json (see journal)" }
        logger.info("Sync pass finished.", metadata: [
            "cmk_sync_id": "\(report.syncID)", "cmk_outcome": "\(report.state.rawValue)", "cmk_key_name": "\(report.key)",
            "cmk_key_version": "\(report.targetVersion ?? "")", "in_sync": "\(report.inSyncCount)/\(report.accounts.count)",
            "vault_calls": "\(report.vaultCalls)", "reasons": "\(reasons.map(\.rawValue).sorted().joined(separator: ","))",
            "duration_ms": "\(Int(report.finished.timeIntervalSince(report.started) * 1000))",
        ])
        if readySent.exchange(true, ordering: .relaxed) {
            notifier.status(line)
        } else {
            notifier.ready(status: line)
        }
        // The host's version usage to the vault service, when configured (never changes the pass).
        await UsageReporter.send(report, daemon: current, logger: logger)
        // What the pass freed goes back to the kernel, not to idle malloc arenas; so do the
        // clean code and data pages it mapped, until the next pass runs them again.
        ProcessMemory.release()
        ResidentCode.release()
    }

    /// What `daemon.json` says about this process.
    private func info(_ daemon: Daemon) -> StateStore.DaemonInfo {
        .init(pid: getpid(), started: startedAt, configuration: daemon.configuration.file, version: CMKVersion.current)
    }

    /// Writes one state file; logs a failure (catalogued; an error the first time, a warning while
    /// it lasts, a notice once it works again) and remembers it so the next pass writes the file
    /// again. Returns whether it worked.
    @discardableResult
    private func writeState(_ path: String, _ write: () throws -> Void) -> Bool {
        do {
            try write()
            if unwritten.withLock({ $0.remove(path) }) != nil {
                logger.notice("The state file can be written again.", metadata: ["cmk_state_file": "\(path)"])
            }
            return true
        } catch {
            let first = unwritten.withLock { $0.insert(path).inserted }
            logger.log(level: first ? .error : .warning, "Cannot write the state file; writing it again at the next pass.", metadata: [
                "error": "\(error)", "cmk_state_file": "\(path)", "message_id": "\(MessageID.stateUnwritable)",
            ])
            return false
        }
    }

    private func reload() async {
        notifier.reloading()
        let old = daemon.withLock { $0 }
        do {
            let fresh = try await reloader()
            daemon.withLock { $0 = fresh }
            logger.notice("Configuration reloaded.", metadata: ["config": "\(fresh.configuration.file)", "accounts": "\(fresh.accounts.count)"])
            events.security(fresh, SecurityLogEntry(event: .configurationReloaded, key: fresh.settings.key.name,
                                                     details: ["config": fresh.configuration.file, "accounts": "\(fresh.accounts.count)"]))
        } catch {
            var metadata: Logger.Metadata = ["error": "\(error)", "config": "\(old.configuration.file)",
                                             "message_id": "\(MessageID.configurationInvalid)"]
            if let error = error as? ConfigurationError, let path = error.keyPath { metadata["cmk_config_key"] = "\(path)" }
            logger.error("Configuration reload failed; keeping the running configuration.", metadata: metadata)
        }
        // READY=1 after RELOADING=1 tells systemd the reload is complete, whatever its result.
        notifier.send("READY=1", "STATUS=\(lastReport.withLock { $0 }.map { StatusLine.make($0) } ?? "reloaded")")
    }

    /// The probe's failing phrase changed between passes: the status line says so.
    private func probeStatusChanged(_ status: ProbeStatus) {
        guard readySent.load(ordering: .relaxed), let report = lastReport.withLock({ $0 }) else { return }
        notifier.status(StatusLine.make(report, probe: status))
    }

    /// READY=1 at the latest after the start timeout, even if the first pass still runs.
    private func readyDeadline(_ timeout: Duration) async {
        try? await Task.sleep(for: timeout)
        if !Task.isCancelled, !readySent.exchange(true, ordering: .relaxed) {
            notifier.ready(status: "starting: first pass still running after \(timeout)")
            logger.warning("First pass exceeded the start timeout; reported ready anyway.", metadata: ["timeout": "\(timeout)"])
        }
    }

    /// WATCHDOG=1 every half interval while the scheduler loop's heartbeat is fresh.
    private func watchdog(interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval / 2)
            if scheduler.isHealthy(maxAge: interval) {
                notifier.watchdog()
            } else {
                logger.critical("The scheduler loop is stuck; withholding watchdog pings so systemd restarts the daemon.")
            }
        }
    }
}
