import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Named points in write paths where the crash-safety harness can kill the process.
///
/// Inert unless the environment says otherwise (checked once at start-up):
/// - `CMK_CRASH_AT=<name>` or `<name>#<n>`: SIGKILL the process at the n-th hit (default first) of that point;
/// - `CMK_CRASH_TRACE=<file>`: append every point's name to the file as it is hit, so the
///   harness can enumerate the points a run passes through;
/// - `CMK_HANG_AT=<name>`: block the calling thread forever at that point (a stuck loop, for
///   watchdog tests).
///
/// Production cost when inert: one load of a constant.
public enum CrashPoints {
    private struct Plan: Sendable {
        var name: String
        var remaining: Int
        var traceFD: Int32
    }

    private static let plan: Mutex<Plan?> = {
        let env = ProcessInfo.processInfo.environment
        var traceFD: Int32 = -1
        if let trace = env["CMK_CRASH_TRACE"] {
            traceFD = open(trace, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        }
        guard let spec = env["CMK_CRASH_AT"] ?? (traceFD >= 0 ? "" : nil) else { return Mutex(nil) }
        let parts = spec.split(separator: "#", maxSplits: 1)
        let name = parts.first.map(String.init) ?? ""
        let count = parts.count > 1 ? Int(parts[1]) ?? 1 : 1
        return Mutex(Plan(name: name, remaining: count, traceFD: traceFD))
    }()

    private static let enabled: Bool = {
        let env = ProcessInfo.processInfo.environment
        return env["CMK_CRASH_AT"] != nil || env["CMK_CRASH_TRACE"] != nil || env["CMK_HANG_AT"] != nil
    }()

    private static let hangName = ProcessInfo.processInfo.environment["CMK_HANG_AT"]

    /// Marks a crash point. Kills the process with SIGKILL when the harness armed this point.
    @inline(__always)
    public static func hit(_ name: StaticString) {
        guard enabled else { return }
        slowPath(name.description)
    }

    private static func slowPath(_ name: String) {
        if name == hangName {
            while true { sleep(3600) }
        }
        let kill = plan.withLock { plan -> Bool in
            guard var current = plan else { return false }
            if current.traceFD >= 0 {
                let line = Array((name + "\n").utf8)
                _ = line.withUnsafeBytes { write(current.traceFD, $0.baseAddress, $0.count) }
            }
            guard current.name == name else { return false }
            current.remaining -= 1
            plan = current
            return current.remaining == 0
        }
        if kill { raise(SIGKILL) }
    }
}
