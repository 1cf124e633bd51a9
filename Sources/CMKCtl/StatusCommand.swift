import ArgumentParser
import CMKConfiguration
import CMKCore
import CMKHost
import CMKSyncer
import Foundation

/// `cmkctl status`: the daemon's last report, the daemon's liveness and the report's age.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the last sync pass: every account's binding, outcome and suspension, and the key versions.",
        discussion: """
            Exit code: 0 only when a daemon runs, its last report is current and in sync; otherwise \
            3 not in sync, 4 key pulled or an account suspended, 1 critical, and 1 when no daemon runs, \
            when the daemon has never completed a pass, when the report is not current (from an earlier \
            daemon process, one the daemon could not replace, or older than twice the sync interval plus \
            a minute: STALE). The report's age is measured on the boot clock, so a stepped or skewed \
            wall clock does not hide a stale report.

            --report-only judges the last report alone, for scripts around `cmk-syncer run --once`: its \
            code whether or not a daemon runs and however old it is (a report the daemon could not \
            replace still exits 1).
            """)

    @OptionGroup var options: GlobalOptions
    @Flag(help: "Print one JSON document.") var json = false
    @Flag(help: "Exit with the last report's code whether or not a daemon runs (after `cmk-syncer run --once`).")
    var reportOnly = false

    /// What `status --json` prints.
    struct Document: Encodable {
        var configuration: String
        var stateDirectory: String
        var neverRun: Bool
        var stale: Bool
        var staleAfter: Date?
        /// Seconds since the report's pass finished (boot clock when the report has it).
        var age: Double?
        /// Why the report is not the running daemon's current one (nil when it is).
        var notCurrent: String?
        var reportOnly: Bool
        var daemon: DaemonState
        var safeToDisable: [String]
        var exitCode: Int32
        var report: SyncReport?
        /// The key-state probe (`sync.probe-interval`): off, or the running daemon's counts.
        var probe: ProbeState
    }

    struct ProbeState: Encodable {
        var enabled: Bool
        var intervalSeconds: Double?
        /// The running daemon's counts (nil before its first probe, or when no daemon runs).
        var status: ProbeStatus?
    }

    struct DaemonState: Encodable {
        var running: Bool
        var pid: Int32?
        var started: Date?
        var reason: String?
    }

    func run() async throws {
        let configuration = try options.loadConfiguration()
        let state = StateStore(directory: configuration.stateDirectory)
        let written = try state.readReport()
        // A report the daemon moved aside because it could not replace it is shown, never as current.
        let movedAside = written == nil ? try? state.readStaleReport() : nil
        let report = written ?? movedAside
        let process = DaemonProcess(state: state)
        var daemon = DaemonState(running: false, reason: process.notRunningReason)
        switch process.liveness {
        case .running(let pid, let info): daemon = DaemonState(running: true, pid: pid, started: info?.started)
        case .notRunning(let info): daemon.pid = info?.pid
        }
        let horizon = 2 * configuration.sync.interval.timeInterval + 60
        let age = report.map { Self.age(of: $0) }
        let stale = age.map { $0 > horizon } ?? false
        let finiteAge = age.flatMap { $0.isFinite ? $0 : nil }
        var notCurrent: String?
        if let movedAside {
            notCurrent = "cmk-syncer could not write its last report (\(state.statusPath)); this is the last one it wrote, pass \(movedAside.syncID), moved aside to \(state.staleStatusPath); see `journalctl -u cmk-syncer`"
        } else if let report, daemon.running, let pid = daemon.pid, report.pid != pid {
            notCurrent = "this report is from an earlier cmk-syncer (pid \(report.pid)); the running one (pid \(pid)) has not written one yet: its first pass still runs, or it cannot write \(state.statusPath) (see `journalctl -u cmk-syncer`)"
        }
        var code = report.map(CMKExitCode.forReport) ?? CMKExitCode.failure
        if movedAside != nil || (!reportOnly && (!daemon.running || notCurrent != nil || stale)) { code = CMKExitCode.failure }
        let document = Document(configuration: configuration.file, stateDirectory: configuration.stateDirectory, neverRun: report == nil,
                                stale: stale, staleAfter: finiteAge.map { Date().addingTimeInterval(horizon - $0) }, age: finiteAge,
                                notCurrent: notCurrent, reportOnly: reportOnly, daemon: daemon,
                                safeToDisable: report?.versions.filter(\.safeToDisable).map(\.version) ?? [], exitCode: code, report: report,
                                probe: Self.probe(configuration.sync.probeInterval, state: state, daemon: daemon))
        if json {
            try Output.json(document)
        } else {
            Self.printText(document, statePath: state.statusPath)
        }
        if code != CMKExitCode.ok { throw ExitCode(code) }
    }

    /// The probe's counts when the running daemon wrote them.
    static func probe(_ interval: Duration?, state: StateStore, daemon: DaemonState) -> ProbeState {
        let status = ProbeStatus.read(stateDirectory: state.directory).flatMap { daemon.running && $0.pid == daemon.pid ? $0 : nil }
        return ProbeState(enabled: interval != nil || status != nil, intervalSeconds: status?.intervalSeconds ?? interval?.timeInterval, status: status)
    }

    /// One line on the key-state probe.
    static func probeLine(_ probe: ProbeState) -> String {
        guard probe.enabled, let seconds = probe.intervalSeconds else { return "probe: off (sync.probe-interval)" }
        var line = "probe: every \(DurationSyntax.format(.milliseconds(Int(seconds * 1000))))"
        guard let status = probe.status else { return line + "; no probe yet" }
        line += "; \(status.good) good" + (status.lastGood.map { ", last \(Output.date($0)) (\(Output.relative($0)))" } ?? "")
        if status.faults > 0 {
            let kinds = status.faultsByCode.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            line += "; \(status.faults) failed (\(kinds))"
            if status.consecutiveFaults > 0 { line += ", FAILING: the last \(status.consecutiveFaults)" }
        }
        line += "; \(status.passesStarted) pass\(status.passesStarted == 1 ? "" : "es") started"
        if let changes = status.lastChanges, let at = status.lastChange { line += " (last: \(changes.joined(separator: ", ")) at \(Output.date(at)))" }
        return line
    }

    /// Seconds since the report's pass finished: on the boot clock when the report was written in
    /// this boot (wall-clock steps and skew between processes do not move it), else by wall clock,
    /// where a report dated in the future counts as infinitely old (its writer's clock was wrong).
    static func age(of report: SyncReport, now: Date = Date(), boot: StateStore.BootInstant? = .now()) -> Double {
        if let seconds = report.finishedUptime, let id = report.bootID, let boot,
           let age = boot.since(StateStore.BootInstant(seconds: seconds, bootID: id)) {
            return age
        }
        let age = now.timeIntervalSince(report.finished)
        return age < -60 ? .infinity : age
    }

    static func printText(_ document: Document, statePath: String) {
        let daemon = document.daemon
        if daemon.running {
            Output.line("daemon: running (pid \(daemon.pid ?? 0), since \(Output.date(daemon.started)))")
        } else {
            Output.line("daemon: NOT RUNNING (\(daemon.reason ?? "unknown"))")
        }
        guard let report = document.report else {
            Output.line("cmk-syncer has never completed a sync pass (no \(statePath)); start it, or run `cmk-syncer run --once --config \(document.configuration)`.")
            return
        }
        Output.line("state: \(report.state.label) — \(report.inSyncCount)/\(report.accounts.count) accounts in sync, key \(report.key), current version \(report.currentVersion ?? "unknown")")
        if let cause = report.cause { Output.line("cause: \(cause)") }
        if let expires = report.currentExpires {
            Output.line("expiry warning: the current version expires \(Output.date(expires)) (\(Output.relative(expires))); the customer should rotate the key")
        }
        let finished = Output.relative(Date().addingTimeInterval(-(document.age ?? Date().timeIntervalSince(report.finished))))
        Output.line("last pass: \(report.syncID), finished \(Output.date(report.finished)) (\(finished)) by pid \(report.pid)")
        if let interrupted = report.interrupted { Output.line("INCOMPLETE: the pass was cut short (\(interrupted)); accounts marked not-reached are shown as an earlier pass saw them.") }
        if let notCurrent = document.notCurrent { Output.line("NOT CURRENT: \(notCurrent)") }
        if let next = report.nextPass { Output.line("next pass: \(Output.date(next)) (\(Output.relative(next)))") }
        Output.line(probeLine(document.probe))
        if let since = report.pulledSince { Output.line("key pulled since: \(Output.date(since))") }
        if document.stale {
            Output.line("STALE: this report is older than twice the sync interval plus a minute (\(Output.date(document.staleAfter))); the daemon is not completing passes.")
        }
        if let age = document.age, age.isFinite, case let skew = Date().timeIntervalSince(report.finished) - age, abs(skew) > 60 {
            let off = Output.relative(Date(timeIntervalSinceNow: -abs(skew))).dropLast(4)
            Output.line("note: the report's wall-clock times are \(skew > 0 ? "behind" : "ahead of") this host's clock by about \(off) (a clock step, or skew between processes); its age is measured on the boot clock.")
        }
        Output.line()
        Output.table(["ACCOUNT", "KIND", "BINDING", "OUTCOME", "SUSPENDED", "DEKS", "VERSIONS", "HANDLED-BY"], report.accounts.map { account in
            [account.name, account.kind.rawValue, account.binding ?? "-", account.outcome.description,
             account.suspended ? "since \(Output.date(account.suspendedSince))" : "no", "\(account.deks)",
             account.versions.joined(separator: ","), account.handledBy ?? "-"]
        })
        for account in report.accounts where account.outcome.detail != nil {
            Output.line("  \(account.name): \(account.outcome.detail!)")
        }
        Output.line()
        Output.table(["VERSION", "CURRENT", "ENABLED", "ACCOUNTS", "DEKS", "SAFE-TO-DISABLE"], report.versions.map { version in
            [version.version, version.current ? "yes" : "", version.enabled.map { $0 ? "yes" : "no" } ?? "?",
             "\(version.accounts.count)", "\(version.deks)", version.safeToDisable ? "yes" : "no"]
        })
        Output.line()
        Output.line("versions safe to disable: \(document.safeToDisable.isEmpty ? "none" : document.safeToDisable.joined(separator: ", "))")
    }
}
