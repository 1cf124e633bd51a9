import CMKAudit
import CMKCore
import CMKHost
import CMKSyncer
import Foundation
import Logging
import Synchronization

/// The key-state probe between passes (issue 22, `sync.probe-interval`): every interval (jittered
/// like the pass) it reads the vault snapshot alone, the one call a pass starts with and no account
/// I/O, and compares it with the snapshot the last pass acted on (``ProbeVerdict``). A change a pass
/// acts on starts a pass at once (``Scheduler/Reason/probe``, coalesced like SIGUSR1), with a journal
/// notice and a `key-change-probed` security-log record.
///
/// A probe never changes anything by itself: a failed probe (outage, 429, 401/403, a malformed
/// answer) is only counted (``ProbeStatus``, `probe.json`, `cmkctl status`). It skips its turn while
/// a pass runs or is asked for and while the vault throttle pauses the pass's calls, waits out a
/// `Retry-After` the vault gave it, and never feeds the throttle: it never slows a rotation.
final class KeyProbe: Sendable {
    /// Consecutive faults after which the journal hears (once per streak) that probes fail.
    static let warnAfter = 3

    private struct State: Sendable {
        var baseline: ProbeBaseline?
        /// The snapshot the running pass acts on.
        var observed: KeySnapshot?
        /// Bumped when a pass starts and ends: a probe that overlapped a pass is discarded.
        var generation = 0
        var notBefore: ContinuousClock.Instant?
        var status: ProbeStatus
        var warned = false
    }

    private let state: Mutex<State>
    private let scheduler: Scheduler
    private let logger: Logger
    private let events: EventRecorder
    private let daemon: @Sendable () -> Daemon
    /// Told the status after a probe whose failing phrase changed (the daemon's status line).
    private let statusChanged: @Sendable (ProbeStatus) -> Void

    init(scheduler: Scheduler, logger: Logger, events: EventRecorder, daemon: @escaping @Sendable () -> Daemon,
         statusChanged: @escaping @Sendable (ProbeStatus) -> Void = { _ in }) {
        let interval = daemon().configuration.sync.probeInterval ?? .zero
        self.state = Mutex(State(status: ProbeStatus(pid: getpid(), intervalSeconds: interval.timeInterval)))
        self.scheduler = scheduler
        self.logger = logger
        self.events = events
        self.daemon = daemon
        self.statusChanged = statusChanged
    }

    var status: ProbeStatus { state.withLock { $0.status } }

    /// A pass is starting: a probe in flight is discarded, and the pass tells the probe the
    /// snapshot it acts on.
    func prepare(_ pass: inout SyncPass) {
        state.withLock {
            $0.generation += 1
            $0.observed = nil
        }
        pass.observed = { [weak self] snapshot in self?.state.withLock { $0.observed = snapshot } }
    }

    /// The pass finished: the snapshot it acted on (none when it could not get one) is the new baseline.
    func passFinished(report: SyncReport) {
        state.withLock {
            $0.generation += 1
            $0.baseline = ProbeBaseline(snapshot: $0.observed, report: report)
        }
    }

    /// Probes every `sync.probe-interval` until cancelled.
    func run() async {
        while !Task.isCancelled {
            let sync = daemon().configuration.sync
            guard let interval = sync.probeInterval else {
                // Turned off by a reload: look again after a pass interval.
                try? await Task.sleep(for: sync.interval)
                continue
            }
            try? await Task.sleep(for: Scheduler.delay(interval: interval, maxJitter: sync.jitter.maximum(for: interval)))
            if Task.isCancelled { break }
            await probe()
        }
    }

    /// One probe; returns its verdict, or nil when it skipped its turn.
    @discardableResult
    func probe() async -> ProbeVerdict? {
        let current = daemon()
        let turn = state.withLock { state -> (ProbeBaseline, Int)? in
            let waiting = state.notBefore.map { $0 > .now } ?? false
            guard let baseline = state.baseline, !waiting, !scheduler.isBusyOrPending, !current.resolver.throttle.isPaused else {
                state.status.skipped += 1
                return nil
            }
            return (baseline, state.generation)
        }
        guard let (baseline, generation) = turn else { return nil }
        let result: Result<KeySnapshot, VaultError>
        do {
            result = .success(try await current.vault.snapshot(of: current.settings.key))
        } catch {
            result = .failure(VaultError.from(error, "key-state probe of key '\(current.settings.key)'"))
        }
        let verdict = ProbeVerdict.compare(result, with: baseline, now: current.clock.now())
        let outcome = state.withLock { state -> (ProbeStatus, warn: Bool, recovered: Bool, before: String?)? in
            // A pass started (or ran) meanwhile: it saw the vault itself.
            guard state.generation == generation else {
                state.status.skipped += 1
                return nil
            }
            let before = state.status.failingPhrase
            state.status.record(verdict, at: Date())
            if case .fault(let fault) = verdict, let wait = fault.retryAfter { state.notBefore = .now + wait }
            let warn = !state.warned && state.status.consecutiveFaults >= Self.warnAfter
            let recovered = state.warned && state.status.consecutiveFaults == 0
            if warn { state.warned = true }
            if recovered { state.warned = false }
            return (state.status, warn, recovered, before)
        }
        guard let (status, warn, recovered, before) = outcome else { return nil }
        report(verdict, status: status, warn: warn, recovered: recovered, daemon: current)
        do {
            try status.write(stateDirectory: current.state.directory)
        } catch {
            logger.debug("Cannot write the probe status file.", metadata: ["error": "\(error)", "cmk_state_file": "\(ProbeStatus.path(stateDirectory: current.state.directory))"])
        }
        if status.failingPhrase != before { statusChanged(status) }
        if case .changed = verdict { scheduler.trigger(.probe) }
        return verdict
    }

    private func report(_ verdict: ProbeVerdict, status: ProbeStatus, warn: Bool, recovered: Bool, daemon: Daemon) {
        let key = daemon.settings.key.name
        switch verdict {
        case .unchanged:
            logger.trace("Key-state probe: nothing changed.", metadata: ["cmk_key_name": "\(key)"])
        case .changed(let changes):
            let list = changes.map(\.description).joined(separator: ", ")
            logger.notice("The key-state probe saw a change a pass acts on; a pass runs now.", metadata: [
                "message_id": "\(MessageID.keyChangeProbed)", "cmk_key_name": "\(key)", "cmk_probe_changes": "\(list)",
            ])
            events.security(daemon, SecurityLogEntry(event: .keyChangeProbed, key: key, version: changes.compactMap(\.version).first,
                                                      details: ["changes": list]))
        case .fault(let fault):
            logger.debug("Key-state probe failed; nothing is changed.", metadata: [
                "cmk_key_name": "\(key)", "cmk_reason": "\(fault.code)", "cmk_probe_faults": "\(status.consecutiveFaults)",
            ])
        }
        if warn {
            logger.warning("Key-state probes keep failing; they change nothing, and passes go on as scheduled.", metadata: [
                "message_id": "\(MessageID.keyProbeFailing)", "cmk_key_name": "\(key)", "cmk_reason": "\(status.lastFaultCode ?? "")",
                "cmk_probe_faults": "\(status.consecutiveFaults)",
            ])
        }
        if recovered {
            logger.notice("Key-state probes work again.", metadata: ["cmk_key_name": "\(key)", "cmk_probe_faults": "\(status.faults)"])
        }
    }
}
