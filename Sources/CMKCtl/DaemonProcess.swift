import CMKDaemon
import Foundation

/// The running daemon as `cmkctl` sees it: `daemon.json` in the state directory and whether its
/// pid is alive.
struct DaemonProcess {
    enum Liveness {
        /// No `daemon.json`: the daemon is not running (or never ran).
        case noInfo
        /// `daemon.json` names a pid that is gone (the daemon was killed without cleaning up).
        case dead(StateStore.DaemonInfo)
        case running(StateStore.DaemonInfo)
    }

    let state: StateStore

    var liveness: Liveness {
        guard let info = try? state.readDaemonInfo() else { return .noInfo }
        return Self.isAlive(info.pid) ? .running(info) : .dead(info)
    }

    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// Why the daemon is not running, as a sentence, or nil when it runs.
    var notRunningReason: String? {
        switch liveness {
        case .running: return nil
        case .noInfo: return "no daemon.json in \(state.directory)"
        case .dead(let info): return "\(state.daemonPath) names pid \(info.pid), which is not alive"
        }
    }

    /// Sends SIGUSR1 (run a pass now). Returns the pid signalled, or nil when the daemon is not running.
    func requestPass() throws -> Int32? {
        guard case .running(let info) = liveness else { return nil }
        guard kill(info.pid, SIGUSR1) == 0 else {
            throw CtlError("cannot signal cmk-syncer (pid \(info.pid)): \(String(cString: strerror(errno))); run cmkctl as the daemon's user or root")
        }
        return info.pid
    }

    /// After a key change: nudges the daemon and says so.
    func nudgeAfterChange() {
        do {
            if let pid = try requestPass() {
                Output.line("cmk-syncer (pid \(pid)) notified: it runs a pass now.")
            } else {
                Output.line("cmk-syncer is not running (\(notRunningReason ?? "")); the change takes effect at its next pass.")
            }
        } catch {
            Output.warning("\(error)")
        }
    }
}
