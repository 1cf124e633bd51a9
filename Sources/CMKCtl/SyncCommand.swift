import ArgumentParser
import CMKDaemon
import CMKSyncer
import Foundation

/// `cmkctl sync`: asks the running daemon for a pass now (SIGUSR1), optionally waiting for it.
struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Ask the running daemon to run a sync pass now (SIGUSR1).",
        discussion: "With --wait, exits with the new report's code: 0 in sync, 3 not in sync, 4 key pulled or suspended, 1 critical or timeout.")

    @OptionGroup var options: GlobalOptions
    @Flag(help: "Wait for the pass to finish and exit with its report's code.") var wait = false
    @Option(help: ArgumentHelp("How long --wait waits.", valueName: "seconds")) var timeout: Double = 300

    func run() async throws {
        let configuration = try options.loadConfiguration()
        let state = StateStore(directory: configuration.stateDirectory)
        let process = DaemonProcess(state: state)
        let before = try? state.readReport()
        let requested = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        guard let pid = try process.requestPass() else {
            throw CtlError("cmk-syncer is not running (\(process.notRunningReason ?? "")); start it with `systemctl start cmk-syncer` or `cmk-syncer run --config \(configuration.file)`")
        }
        Output.line("asked cmk-syncer (pid \(pid)) to run a pass now")
        guard wait else { return }

        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            // The report's dates have whole seconds; a new sync id that started no earlier than the
            // request's second is the pass we asked for (or a later one).
            if let report = try? state.readReport(), report.syncID != before?.syncID, report.started >= requested {
                Output.line("pass \(report.syncID) finished: \(report.state.label), \(report.inSyncCount)/\(report.accounts.count) accounts in sync")
                if let cause = report.cause { Output.line("cause: \(cause)") }
                let code = CMKExitCode.forReport(report)
                if code != CMKExitCode.ok { throw ExitCode(code) }
                return
            }
            if !DaemonProcess.isAlive(pid) {
                throw CtlError("cmk-syncer (pid \(pid)) exited before finishing the pass; see `journalctl -u cmk-syncer`")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw CtlError("no report from cmk-syncer (pid \(pid)) within \(timeout) seconds; see `journalctl -u cmk-syncer`")
    }
}
