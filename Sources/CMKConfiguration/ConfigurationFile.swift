import CMKCore
import Glibc

/// Reading the configuration file, and who may change it. Whoever can write the file chooses the
/// master key, the vault and the state directory, so the file must be a regular file (not a
/// symbolic link), owned by this process's user or root, and not writable by group or others; it
/// may be readable by all (it holds paths and names, never secrets). The directory holding it must
/// be owned by this process's user or root, and not writable by group or others unless it is
/// sticky (as `/tmp` is: there only a file's owner may rename or remove it). Directories above it
/// are not checked.
///
/// The directory is opened first and the file within it with `O_NOFOLLOW`, so the checked
/// directory and file are the ones read.
enum ConfigurationFile {
    /// The type and mode the file must have: ``FileAccessRule`` with group and others kept from
    /// writing, whoever owns it (the owner is checked here: this process's user or root).
    static let fileRule = FileAccessRule(kind: .file, forbidden: 0o022, ownedByUs: false)
    /// The same for the directory holding the file, unless it is sticky.
    static let directoryRule = FileAccessRule(kind: .directory, forbidden: 0o022, ownedByUs: false)

    /// The file's text, or an error that names the file, what is wrong and what fixes it.
    static func text(at path: String) throws(ConfigurationError) -> String {
        guard !path.isEmpty else {
            throw ConfigurationError(.fileMissing, "the configuration path is empty: pass --config <file>", file: path)
        }
        let (directory, name) = split(path)
        let directoryFD = try openDirectory(directory, path: path)
        defer { close(directoryFD) }
        let fd = try openFile(name, in: directoryFD, path: path)
        defer { close(fd) }

        let info = try status(fd, path: path)
        if info.st_mode & S_IFMT == S_IFDIR {
            throw ConfigurationError(.unreadable, "is a directory, not a configuration file: pass --config <file>", file: path)
        }
        try check(info, path: path)
        try check(directory: status(directoryFD, path: path), named: directory, path: path)
        guard info.st_size <= SyncerConfiguration.maximumFileSize else {
            throw ConfigurationError(.unreadable, "the configuration file has \(info.st_size) bytes; at most 1 MiB is accepted", file: path)
        }
        let bytes = try readAll(fd, path: path)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigurationError(.unreadable, "the configuration file is not UTF-8 text", file: path)
        }
        return text
    }

    /// The directory part ("." for a bare name) and the last component of `path`.
    static func split(_ path: String) -> (directory: String, name: String) {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return (".", String(trimmed)) }
        let name = trimmed[trimmed.index(after: slash)...]
        let directory = slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
        return (directory, name.isEmpty ? "." : String(name))
    }

    // MARK: Rules

    /// The file: a regular file of this process's user or root that group and others cannot write.
    private static func check(_ info: stat, path: String) throws(ConfigurationError) {
        if let problem = fileRule.problem(with: info, path: path, what: "configuration file") {
            switch problem.kind {
            case .type:
                throw ConfigurationError(.unreadable, "is not a regular file (a FIFO, socket or device): pass --config <file>", file: path)
            case .mode:
                throw ConfigurationError(.unsafeFile, "has mode \(SystemFile.octal(info.st_mode)), which lets group or others write it, and so choose the master key and the state directory; fix it with: chmod go-w '\(path)'", file: path)
            case .owner:
                break  // the rule leaves the owner to us: this process's user or root
            }
        }
        if let owner = foreignOwner(info) {
            throw ConfigurationError(.unsafeFile, "is owned by uid \(owner), neither this process's user (uid \(geteuid())) nor root, who alone may choose the master key and the state directory; fix it with: \(chown(path))", file: path)
        }
    }

    /// The directory holding the file: nobody but this process's user or root may replace the file.
    private static func check(directory info: stat, named directory: String, path: String) throws(ConfigurationError) {
        if let owner = foreignOwner(info) {
            throw ConfigurationError(.unsafeFile, "is in the directory '\(directory)', owned by uid \(owner), neither this process's user (uid \(geteuid())) nor root, who could replace the file; fix it with: \(chown(directory))", file: path)
        }
        if info.st_mode & S_ISVTX == 0, let problem = directoryRule.problem(with: info, path: directory, what: "configuration directory"), problem.kind == .mode {
            throw ConfigurationError(.unsafeFile, "is in the directory '\(directory)', whose mode \(SystemFile.octal(info.st_mode)) lets group or others replace the file; fix it with: chmod go-w '\(directory)'", file: path)
        }
    }

    /// The owner, when it is neither this process's user nor root.
    private static func foreignOwner(_ info: stat) -> uid_t? {
        info.st_uid == geteuid() || info.st_uid == 0 ? nil : info.st_uid
    }

    private static func chown(_ path: String) -> String {
        let user = geteuid()
        return user == 0 ? "chown root '\(path)'" : "chown root '\(path)' (or chown \(user) '\(path)')"
    }

    // MARK: System calls

    /// Linux's `O_PATH`, which Glibc's Swift module does not export (it needs `_GNU_SOURCE`).
    private static let pathOnly: Int32 = 0o10_000_000

    /// The directory, opened for `openat` and `fstat` only (`O_PATH`: no read permission needed).
    private static func openDirectory(_ directory: String, path: String) throws(ConfigurationError) -> Int32 {
        while true {
            let fd = open(directory, pathOnly | O_DIRECTORY | O_CLOEXEC)
            if fd >= 0 { return fd }
            if errno == EINTR { continue }
            throw openError(errno, path: path)
        }
    }

    /// The file `name` in the open directory, never through a symbolic link, never waiting for a
    /// FIFO's writer.
    private static func openFile(_ name: String, in directory: Int32, path: String) throws(ConfigurationError) -> Int32 {
        while true {
            let fd = openat(directory, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
            if fd >= 0 { return fd }
            if errno == EINTR { continue }
            if errno == ELOOP {
                throw ConfigurationError(.unsafeFile, "is a symbolic link; the configuration must be a regular file: pass the file itself (readlink -f '\(path)') with --config, or replace the link with the file", file: path)
            }
            throw openError(errno, path: path)
        }
    }

    private static func openError(_ code: Int32, path: String) -> ConfigurationError {
        if code == ENOENT || code == ENOTDIR {
            return ConfigurationError(.fileMissing, "the configuration file does not exist: create it (config/cmk-syncer.example.yaml is a commented example) or pass --config <file>", file: path)
        }
        return ConfigurationError(.unreadable, "cannot read the configuration file: \(String(cString: strerror(code)))", file: path)
    }

    private static func status(_ fd: Int32, path: String) throws(ConfigurationError) -> stat {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw ConfigurationError(.unreadable, "cannot read the configuration file: \(String(cString: strerror(errno)))", file: path)
        }
        return info
    }

    /// Every byte, refusing a file that grew beyond ``SyncerConfiguration/maximumFileSize``.
    private static func readAll(_ fd: Int32, path: String) throws(ConfigurationError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if got < 0 {
                if errno == EINTR { continue }
                throw ConfigurationError(.unreadable, "cannot read the configuration file: \(String(cString: strerror(errno)))", file: path)
            }
            if got == 0 { return bytes }
            bytes += chunk[..<got]
            guard bytes.count <= SyncerConfiguration.maximumFileSize else {
                throw ConfigurationError(.unreadable, "the configuration file has more than 1 MiB; at most 1 MiB is accepted", file: path)
            }
        }
    }
}
