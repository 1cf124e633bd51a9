import CMKHost
import Foundation

/// The running daemon as `cmkctl` sees it. Whether it runs is whether a process holds the state
/// directory's lock (`daemon.lock`, held for the daemon's whole life); its pid comes from the
/// kernel's lock table (`/proc/locks`), else from `daemon.json`, so a daemon that could not write
/// `daemon.json` is still found.
struct DaemonProcess {
    enum Liveness {
        /// Nothing holds the lock; `daemon.json`, if left behind, names the process that ran last.
        case notRunning(StateStore.DaemonInfo?)
        /// A daemon holds the lock: its pid when known, and `daemon.json` when it describes that pid.
        case running(pid: Int32?, info: StateStore.DaemonInfo?)
    }

    let state: StateStore
    var lockPath: String { state.directory + "/daemon.lock" }

    var liveness: Liveness {
        let info = try? state.readDaemonInfo()
        let holder = Self.lockHolder(lockPath)
        guard holder.held || StateDirectoryLock.isHeld(stateDirectory: state.directory) else { return .notRunning(info) }
        let pid = holder.pid ?? info.flatMap { Self.isAlive($0.pid) ? $0.pid : nil }
        return .running(pid: pid, info: info?.pid == pid ? info : nil)
    }

    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// Whether `/proc/locks` shows an exclusive `flock` on `path`, and the holder's pid (nil when
    /// the holder is outside this pid namespace or the table cannot be read).
    static func lockHolder(_ path: String) -> (held: Bool, pid: Int32?) {
        var info = stat()
        guard stat(path, &info) == 0, let table = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return (false, nil) }
        let dev = UInt64(info.st_dev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
        let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
        let file = String(format: "%02llx:%02llx:%llu", major, minor, UInt64(info.st_ino))
        // "1: FLOCK  ADVISORY  WRITE 8809 fe:00:16221260 0 EOF" (waiters have "->" after the number).
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "FLOCK", fields[3] == "WRITE", fields[5] == file else { continue }
            let pid = Int32(fields[4]).flatMap { $0 > 0 ? $0 : nil }
            return (true, pid)
        }
        return (false, nil)
    }

    /// Why the daemon is not running, as a sentence, or nil when it runs.
    var notRunningReason: String? {
        switch liveness {
        case .running: return nil
        case .notRunning(nil): return "nothing holds \(lockPath)"
        case .notRunning(let info?): return "nothing holds \(lockPath); pid \(info.pid) of \(state.daemonPath) no longer runs it"
        }
    }

    /// Sends SIGUSR1 (run a pass now). Returns the pid signalled, or nil when the daemon is not running.
    func requestPass() throws -> Int32? {
        guard case .running(let found, _) = liveness else { return nil }
        guard let pid = found else {
            throw CtlError("cmk-syncer runs on \(state.directory) (it holds \(lockPath)) but its pid is unknown: \(state.daemonPath) is missing and /proc/locks does not name it; see `journalctl -u cmk-syncer`")
        }
        guard kill(pid, SIGUSR1) == 0 else {
            throw CtlError("cannot signal cmk-syncer (pid \(pid)): \(String(cString: strerror(errno))); run cmkctl as the daemon's user or root")
        }
        return pid
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
