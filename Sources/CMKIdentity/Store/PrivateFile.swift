import CMKCore
import Foundation
import Glibc

/// The files of the identity store and the token-signing key: created 0600 in a 0700 directory,
/// refused when someone else can reach them (``FileAccessRule/privateFile``).
enum PrivateFile {
    /// Creates the parent directory (0700) if missing and `path` (empty, 0600, `O_EXCL`) if
    /// missing; refuses an existing file or SQLite side file that is not private.
    static func prepare(_ path: String, what: String) throws {
        let directory = SystemFile.directory(of: path)
        do throws(SystemFileError) {
            try SystemFile.makeDirectories(directory, mode: 0o700)
            if try SystemFile.status(path, followLinks: false) == nil,
               let fd = try SystemFile.open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600, missingOK: false) {
                fchmod(fd, 0o600)
                close(fd)
            }
        } catch let error where error.code == EEXIST {
            _ = error
            // Created meanwhile by another process: checked below like any existing file.
        } catch {
            throw IdentityError(error.isPermission ? .permissions : .io, "cannot create the \(what) '\(path)': \(error.message); check the state directory '\(directory)'", underlying: error)
        }
        for (suffix, role) in [("", what), ("-wal", "\(what)'s write-ahead log"), ("-shm", "\(what)'s shared-memory file")] {
            try check(path + suffix, what: role, missingOK: !suffix.isEmpty)
        }
    }

    /// Refuses `path` if it is not a regular file of this user that only its owner can access.
    static func check(_ path: String, what: String, missingOK: Bool) throws {
        let info: stat?
        do throws(SystemFileError) {
            info = try SystemFile.status(path, followLinks: false)
        } catch {
            throw IdentityError(.io, "cannot stat the \(what) '\(path)': \(error.message)", underlying: error)
        }
        guard let info else {
            if missingOK { return }
            throw IdentityError(.io, "the \(what) '\(path)' vanished while it was opened")
        }
        if let problem = FileAccessRule.privateFile.problem(with: info, path: path, what: what) {
            throw IdentityError(problem.kind == .type ? .misconfigured : .permissions, problem.description)
        }
    }
}
