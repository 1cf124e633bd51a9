import CMKCore
import CMKHost
import Foundation
import Glibc

extension DataCommand {
    /// Where `cmkctl data get --out PATH` writes the plaintext. Whatever PATH is, it is never
    /// replaced by something of another kind:
    ///
    /// - a new path or a regular file: written to a new temporary file beside it (0600, created
    ///   exclusively) that is renamed over it once the object is complete, so a partial object
    ///   never looks complete;
    /// - a character or block device or a FIFO (`/dev/null`, a named pipe): opened for writing
    ///   and written in place, never created, truncated or replaced (a device node turned into a
    ///   regular file breaks every service that uses it);
    /// - a symbolic link: followed, as cp and curl do; the file it leads to is treated as above
    ///   (a regular file is replaced at its real path, the link stays a link); a link to nothing
    ///   is refused;
    /// - a directory or a socket: refused.
    final class OutputFile {
        /// What the operator named.
        let path: String
        /// Nil when writing in place.
        private let replacement: (temp: String, target: String)?
        /// Nil once committed or abandoned.
        private var fd: Int32?
        private let isBlockDevice: Bool

        /// True when the object goes straight into the destination (a device or FIFO), so that a
        /// failed read leaves part of it there.
        var writesInPlace: Bool { replacement == nil }

        static func open(_ path: String) throws -> OutputFile {
            // stat follows links as opening would (fs.protected_symlinks included), and does not
            // open a FIFO, which would wait for a reader.
            guard let info = try status(path, followLinks: true) else {
                if try status(path, followLinks: false) != nil {
                    throw CtlError("cannot write to \(path): it is a symbolic link to a file that does not exist; name the file itself", exitCode: CMKExitCode.usage)
                }
                return try replacing(path, display: path)
            }
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                return try replacing(try realPath(path, of: info), display: path)
            case S_IFCHR, S_IFBLK, S_IFIFO:
                return try inPlace(path, of: info)
            case S_IFDIR:
                throw CtlError("cannot write to \(path): it is a directory; name a file", exitCode: CMKExitCode.usage)
            default:
                throw CtlError("cannot write to \(path): it is a socket; name a file, a device or a FIFO", exitCode: CMKExitCode.usage)
            }
        }

        func write(_ bytes: [UInt8]) throws {
            guard let fd else { throw CtlError("cannot write to \(path): it is already closed") }
            try system { () throws(SystemFileError) in try SystemFile.writeAll(fd, Data(bytes), replacement?.temp ?? path) }
        }

        /// Makes the object visible: the temporary file is synced and renamed over its target; a
        /// block device is synced. On failure the temporary file is removed.
        func commit() throws {
            guard let fd else { throw CtlError("cannot write to \(path): it is already closed") }
            do {
                try system { () throws(SystemFileError) in
                    if let replacement {
                        try SystemFile.fsync(fd, replacement.temp)
                        try SystemFile.rename(replacement.temp, replacement.target)
                    } else if isBlockDevice {
                        try SystemFile.fsync(fd, path)
                    }
                }
            } catch {
                abandon()
                throw error
            }
            close(fd)
            self.fd = nil
        }

        /// Drops what was written to the temporary file; a device or FIFO keeps what it received.
        /// Does nothing once committed.
        func abandon() {
            guard let fd else { return }
            close(fd)
            self.fd = nil
            if let replacement { unlink(replacement.temp) }
        }

        private init(path: String, replacement: (temp: String, target: String)?, fd: Int32, isBlockDevice: Bool = false) {
            self.path = path
            self.replacement = replacement
            self.fd = fd
            self.isBlockDevice = isBlockDevice
        }

        private static func replacing(_ target: String, display: String) throws -> OutputFile {
            var generator = SystemRandomNumberGenerator()
            let temp = "\(target).cmkctl-partial-" + Hex.encode((0..<8).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
            let fd = try system { () throws(SystemFileError) in
                try SystemFile.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
            }
            guard let fd else { throw CtlError("cannot create \(temp): its directory does not exist") }
            return OutputFile(path: display, replacement: (temp, target), fd: fd)
        }

        private static func inPlace(_ path: String, of info: stat) throws -> OutputFile {
            // No O_CREAT, no O_TRUNC: a device or FIFO is written as it is (a FIFO waits for its reader).
            let opened = try system { () throws(SystemFileError) in try SystemFile.open(path, O_WRONLY | O_NOCTTY) }
            guard let fd = opened else { throw CtlError("cannot write to \(path): it vanished") }
            let now = try system { () throws(SystemFileError) in try SystemFile.status(of: fd, path) }
            guard now.st_dev == info.st_dev, now.st_ino == info.st_ino else {
                close(fd)
                throw CtlError("cannot write to \(path): it was replaced while being opened; try again")
            }
            return OutputFile(path: path, replacement: nil, fd: fd, isBlockDevice: info.st_mode & S_IFMT == S_IFBLK)
        }

        /// The file `path` leads to, links resolved, checked to be the file `info` describes.
        private static func realPath(_ path: String, of info: stat) throws -> String {
            guard let resolved = realpath(path, nil) else {
                throw CtlError("cannot resolve \(path): \(String(cString: strerror(errno)))")
            }
            defer { free(resolved) }
            let real = String(cString: resolved)
            guard let now = try status(real, followLinks: false), now.st_dev == info.st_dev, now.st_ino == info.st_ino else {
                throw CtlError("cannot write to \(path): it was replaced while being resolved; try again")
            }
            return real
        }

        private static func status(_ path: String, followLinks: Bool) throws -> stat? {
            try system { () throws(SystemFileError) in try SystemFile.status(path, followLinks: followLinks) }
        }

        /// Runs a ``SystemFile`` call, its failure as the operator's sentence (exit 1).
        private static func system<T>(_ body: () throws(SystemFileError) -> T) throws -> T {
            do throws(SystemFileError) { return try body() } catch { throw CtlError("cannot write the object: \(error)") }
        }

        private func system<T>(_ body: () throws(SystemFileError) -> T) throws -> T { try Self.system(body) }
    }
}

