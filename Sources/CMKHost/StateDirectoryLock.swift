import CMKCore
import Foundation
import Glibc

/// One daemon per state directory: an exclusive `flock(2)` on `<state directory>/daemon.lock`, held
/// for the life of the process (the kernel drops it when the process dies, however it dies).
///
/// Two daemons on one state directory would both run passes and both write `status.json` and
/// `daemon.json`, so `cmkctl` would see only the last one (and report NOT RUNNING after it stops
/// while the other still runs). The second daemon exits instead, naming the first.
public final class StateDirectoryLock: Sendable {
    /// The lock file.
    public let path: String
    private let descriptor: Int32

    /// Why the lock could not be taken.
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        /// The process holding the lock, when `daemon.json` names it.
        public let holder: Int32?
        public let path: String
        public let failure: SystemFileError?

        public var description: String {
            if let failure { return "cannot lock the state directory: \(failure)" }
            let who = holder.map { "pid \($0)" } ?? "another process"
            return "another cmk-syncer (\(who)) already runs on this state directory (\(path) is locked); stop it first, or give this one its own state-directory"
        }
    }

    /// Takes the lock without waiting; throws ``Refusal`` when another process holds it.
    public init(stateDirectory: String) throws(Refusal) {
        path = stateDirectory + "/daemon.lock"
        let fd: Int32
        do throws(SystemFileError) {
            guard let opened = try SystemFile.open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode: 0o600) else {
                throw SystemFileError("open", path, code: ENOENT)
            }
            fd = opened
        } catch {
            throw Refusal(holder: nil, path: path, failure: error)
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            guard code == EWOULDBLOCK else { throw Refusal(holder: nil, path: path, failure: SystemFileError("flock", path, code: code)) }
            let holder = try? StateStore(directory: stateDirectory).readDaemonInfo()?.pid
            throw Refusal(holder: holder, path: path, failure: nil)
        }
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// True when a process holds the lock of `stateDirectory` (a daemon runs on it).
    public static func isHeld(stateDirectory: String) -> Bool {
        let fd = open(stateDirectory + "/daemon.lock", O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // A shared lock is refused only while someone holds the exclusive one; taking it changes nothing.
        return flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK
    }
}
