import ArgumentParser
import CMKConfiguration
import CMKCore
import CMKDaemon
import CMKSyncer
import Foundation

/// `cmkctl status`: the daemon's last report, the daemon's liveness and the report's age.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the last sync pass: every account's binding, outcome and suspension, and the key versions.",
        discussion: """
            Exit code: from the last report (0 in sync, 3 not in sync, 4 key pulled or an account suspended, \
            1 critical), 1 when the daemon has never completed a pass. A report older than twice the sync \
            interval plus a minute is flagged as stale.
            """)

    @OptionGroup var options: GlobalOptions
    @Flag(help: "Print one JSON document.") var json = false

    /// What `status --json` prints.
    struct Document: Encodable {
        var configuration: String
        var stateDirectory: String
        var neverRun: Bool
        var stale: Bool
        var staleAfter: Date?
        var daemon: DaemonState
        var safeToDisable: [String]
        var exitCode: Int32
        var report: SyncReport?
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
        let report = try state.readReport()
        let process = DaemonProcess(state: state)
        var daemon = DaemonState(running: false, reason: process.notRunningReason)
        switch process.liveness {
        case .running(let info): daemon = DaemonState(running: true, pid: info.pid, started: info.started)
        case .dead(let info): daemon.pid = info.pid
        case .noInfo: break
        }
        let staleAfter = report.map { $0.finished.addingTimeInterval(2 * configuration.sync.interval.timeInterval + 60) }
        let stale = staleAfter.map { $0 < Date() } ?? false
        let code = report.map(CMKExitCode.forReport) ?? CMKExitCode.failure
        let document = Document(configuration: configuration.file, stateDirectory: configuration.stateDirectory, neverRun: report == nil,
                                stale: stale, staleAfter: staleAfter, daemon: daemon,
                                safeToDisable: report?.versions.filter(\.safeToDisable).map(\.version) ?? [], exitCode: code, report: report)
        if json {
            try Output.json(document)
        } else {
            Self.printText(document, statePath: state.statusPath)
        }
        if code != CMKExitCode.ok { throw ExitCode(code) }
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
        Output.line("last pass: \(report.syncID), finished \(Output.date(report.finished)) (\(Output.relative(report.finished))) by pid \(report.pid)")
        if let next = report.nextPass { Output.line("next pass: \(Output.date(next)) (\(Output.relative(next)))") }
        if let since = report.pulledSince { Output.line("key pulled since: \(Output.date(since))") }
        if document.stale {
            Output.line("STALE: this report is older than twice the sync interval plus a minute (\(Output.date(document.staleAfter))); the daemon is not completing passes.")
        }
        Output.line()
        Output.table(["ACCOUNT", "KIND", "BINDING", "OUTCOME", "SUSPENDED", "DEKS", "VERSIONS"], report.accounts.map { account in
            [account.name, account.kind.rawValue, account.binding ?? "-", account.outcome.description,
             account.suspended ? "since \(Output.date(account.suspendedSince))" : "no", "\(account.deks)",
             account.versions.joined(separator: ",")]
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
