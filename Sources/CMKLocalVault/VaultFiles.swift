import CMKCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Crash-safe file primitives for the vault directory, from ``SystemFile``: atomic replacement
/// (temp file, fsync, rename, fsync of the directory), consistent reads, and an exclusive `flock`.
/// File system failures become ``VaultError/Code/unavailable``.
enum VaultFiles {
    static func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// Runs a ``SystemFile`` call, turning its failure into a vault error.
    private static func mapped<T>(_ body: () throws(SystemFileError) -> T) throws(VaultError) -> T {
        do throws(SystemFileError) { return try body() } catch {
            // The system error goes along: out of descriptors, the error names the limit as local.
            throw VaultError(.unavailable, error.description, underlying: error)
        }
    }

    /// The file's current identity, or nil if it does not exist.
    static func identity(of path: String) throws(VaultError) -> FileIdentity? {
        try mapped { () throws(SystemFileError) in try FileIdentity.of(path) }
    }

    /// Reads a whole file through one descriptor, so the identity belongs to exactly these bytes.
    /// Returns nil if the file does not exist. With a `rule`, the open file must follow it
    /// (checked on the descriptor, before its bytes are read); `what` names the file in the refusal.
    static func read(_ path: String, rule: FileAccessRule?, what: String) throws(VaultError) -> (data: Data, identity: FileIdentity)? {
        let result = try mapped { () throws(SystemFileError) -> Result<(data: Data, identity: FileIdentity), VaultError>? in
            guard let fd = try SystemFile.open(path, O_RDONLY, missingOK: true) else { return nil }
            defer { close(fd) }
            let info = try SystemFile.status(of: fd, path)
            if let problem = rule?.problem(with: info, path: path, what: what) {
                return .failure(VaultError(.misconfigured, problem.description))
            }
            return .success((try SystemFile.readToEnd(fd, path), FileIdentity(info)))
        }
        return try result?.get()
    }

    /// Reads a file of the vault directory (`vault.json`, `keys/<name>.json`): it must be a regular
    /// file of ours that group and others can neither read nor write (``FileAccessRule/privateFile``,
    /// the mode the vault writes), so nobody else can swap a key or the vault's history.
    static func readVaultFile(_ path: String, what: String) throws(VaultError) -> (data: Data, identity: FileIdentity)? {
        try read(path, rule: .privateFile, what: what)
    }

    /// Replaces `path` atomically with `data` (mode `mode`): write a temp file in the same
    /// directory, fsync it, rename it over the target, fsync the directory.
    static func atomicWrite(_ data: Data, to path: String, mode: mode_t = 0o600) throws(VaultError) {
        try mapped { () throws(SystemFileError) in try SystemFile.atomicWrite(data, to: path, mode: mode) }
    }

    /// Creates `path` with `data` only if it does not exist yet (temp file + `link`, so the target
    /// appears complete or not at all). Returns false if it already existed.
    static func createExclusively(_ data: Data, at path: String, mode: mode_t = 0o600) throws(VaultError) -> Bool {
        try mapped { () throws(SystemFileError) in try SystemFile.createExclusively(data, at: path, mode: mode) }
    }

    /// Removes a file and makes the removal durable.
    static func remove(_ path: String) throws(VaultError) {
        try mapped { () throws(SystemFileError) in
            try SystemFile.unlink(path)
            try SystemFile.fsyncDirectory(SystemFile.directory(of: path))
        }
    }

    static func syncDirectory(_ directory: String) throws(VaultError) {
        try mapped { () throws(SystemFileError) in try SystemFile.fsyncDirectory(directory) }
    }

    /// Runs `body` holding an exclusive `flock` on `lockPath`. The lock belongs to this open file
    /// description, so it excludes other processes and other descriptors in this process alike.
    static func withExclusiveLock<R>(_ lockPath: String, _ body: () throws(VaultError) -> R) throws(VaultError) -> R {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VaultError(.unavailable, "cannot open lock file \(lockPath): \(errnoText())") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            throw VaultError(.unavailable, "cannot lock \(lockPath): \(errnoText())")
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// Creates the directory with mode 0700 if missing, then checks it is a directory owned by
    /// the current user and not writable by group or others.
    static func prepareDirectory(_ path: String, what: String) throws(VaultError) {
        var info = stat()
        if stat(path, &info) != 0 {
            guard errno == ENOENT else { throw VaultError(.misconfigured, "cannot stat \(what) \(path): \(errnoText())") }
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw VaultError(.misconfigured, "cannot create \(what) \(path)", underlying: error)
            }
            chmod(path, 0o700)
            guard stat(path, &info) == 0 else { throw VaultError(.misconfigured, "cannot stat \(what) \(path): \(errnoText())") }
        }
        if let problem = FileAccessRule.ownDirectory.problem(with: info, path: path, what: what) {
            throw VaultError(.misconfigured, problem.description)
        }
    }
}
