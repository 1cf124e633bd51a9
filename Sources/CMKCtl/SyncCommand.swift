import ArgumentParser
import CMKHost
import CMKSyncer
import Foundation

/// `cmkctl sync`: asks the running daemon for a pass now (SIGUSR1), optionally waiting for it.
struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Ask the running daemon to run a sync pass now (SIGUSR1).",
        discussion: "With --wait, exits with the code of the report of a pass that started after the request (matched by a request count the daemon echoes, not by clock times): 0 in sync, 3 not in sync, 4 key pulled or suspended, 1 critical, timeout, or a report the daemon cannot write.")

    @OptionGroup var options: GlobalOptions
    @Flag(help: "Wait for the pass to finish and exit with its report's code.") var wait = false
    @Option(help: ArgumentHelp("How long --wait waits.", valueName: "seconds")) var timeout: Double = 300

    func run() async throws {
        let configuration = try options.loadConfiguration()
        let state = StateStore(directory: configuration.stateDirectory)
        let process = DaemonProcess(state: state)
        let before = try? state.readReport()
        // A report moved aside after the request means the requested pass could not write its own.
        let movedAsideBefore = FileManager.default.fileExists(atPath: state.staleStatusPath)
        // The request is counted before the signal; the pass that echoes this count (or a higher
        // one) read it at its start, so it began after the request, whatever the clocks say.
        var request: UInt64?
        if wait, case .running = process.liveness {
            do {
                request = try state.nextSyncRequest()
            } catch {
                Output.warning("cannot record the request in \(state.syncRequestPath) (\(error)); waiting for the next report instead")
            }
        }
        guard let pid = try process.requestPass() else {
            throw CtlError("cmk-syncer is not running (\(process.notRunningReason ?? "")); start it with `systemctl start cmk-syncer` or `cmk-syncer run --config \(configuration.file)`")
        }
        Output.line("asked cmk-syncer (pid \(pid)) to run a pass now")
        guard wait else { return }

        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        while ContinuousClock.now < deadline {
            let report = try? state.readReport()
            if let report, report.pid == pid,
               request.map({ (report.syncRequest ?? 0) >= $0 }) ?? (report.syncID != before?.syncID) {
                Output.line("pass \(report.syncID) finished: \(report.state.label), \(report.inSyncCount)/\(report.accounts.count) accounts in sync")
                if let cause = report.cause { Output.line("cause: \(cause)") }
                let code = CMKExitCode.forReport(report)
                if code != CMKExitCode.ok { throw ExitCode(code) }
                return
            }
            if report == nil, !movedAsideBefore, FileManager.default.fileExists(atPath: state.staleStatusPath) {
                throw CtlError("cmk-syncer (pid \(pid)) cannot write its report \(state.statusPath) (the last one it wrote is moved aside to \(state.staleStatusPath)); see `journalctl -u cmk-syncer`")
            }
            if !DaemonProcess.isAlive(pid) {
                throw CtlError("cmk-syncer (pid \(pid)) exited before finishing the pass; see `journalctl -u cmk-syncer`")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        let unwritable = FileManager.default.fileExists(atPath: state.staleStatusPath)
            ? " (it cannot write \(state.statusPath): its last report is moved aside to \(state.staleStatusPath))" : ""
        throw CtlError("no report from cmk-syncer (pid \(pid)) within \(timeout) seconds\(unwritable); see `journalctl -u cmk-syncer`")
    }
}
