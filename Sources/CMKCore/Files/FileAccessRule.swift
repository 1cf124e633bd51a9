import Glibc

/// Who may touch a file that holds or guards secrets (keyrings, databases, the master key, the
/// vault's directories, the security log, credential files), and the one check of it that every
/// store shares. Each module turns a ``FileAccessProblem`` into its own error type, so the
/// operator sees the module's vocabulary while the rule and its wording live here once.
public struct FileAccessRule: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case file, directory
    }

    public var kind: Kind
    /// Permission bits that group and others must not have: `0o077` (no access) or `0o022`
    /// (no write).
    public var forbidden: mode_t
    /// Whether the file must belong to the process's effective user.
    public var ownedByUs: Bool

    public init(kind: Kind, forbidden: mode_t, ownedByUs: Bool) {
        self.kind = kind
        self.forbidden = forbidden
        self.ownedByUs = ownedByUs
    }

    /// A regular file only its owner, this process's user, may read or write (0600).
    public static let privateFile = FileAccessRule(kind: .file, forbidden: 0o077, ownedByUs: true)
    /// A directory only its owner, this process's user, may enter or list (0700).
    public static let privateDirectory = FileAccessRule(kind: .directory, forbidden: 0o077, ownedByUs: true)
    /// A directory of this process's user that group and others may read but not change (the
    /// local vault's directories, whose files are private or sealed).
    public static let ownDirectory = FileAccessRule(kind: .directory, forbidden: 0o022, ownedByUs: true)
    /// A regular file that group and others may read but not write, whoever owns it (the security
    /// log, which root may create for the service's user, and whose entries hold no secrets).
    public static let appendOnlyLog = FileAccessRule(kind: .file, forbidden: 0o022, ownedByUs: false)
    /// A regular file only its owner may read, whoever that is (a secret that `LoadCredential=`
    /// provides, owned by root or the service's user).
    public static let credentialFile = FileAccessRule(kind: .file, forbidden: 0o077, ownedByUs: false)

    /// What is wrong with the file `info` describes, or nil when it follows the rule. The type
    /// is checked first, then the owner, then the mode; `what` names the file ("keyring file").
    public func problem(with info: stat, path: String, what: String) -> FileAccessProblem? {
        let type = info.st_mode & S_IFMT
        switch kind {
        case .file where type != S_IFREG:
            return FileAccessProblem(.type, "\(what) '\(path)' is not a regular file")
        case .directory where type != S_IFDIR:
            return FileAccessProblem(.type, "\(what) '\(path)' is not a directory")
        default: break
        }
        let user = geteuid()
        if ownedByUs, info.st_uid != user {
            return FileAccessProblem(.owner, "\(what) '\(path)' is owned by uid \(info.st_uid), not by this process (uid \(user)); fix it with: chown \(user) '\(path)'")
        }
        if info.st_mode & forbidden != 0 {
            let access = forbidden & 0o044 == 0 ? "lets group or others write it" : "gives group or others access"
            let fix = kind == .directory ? "700" : "600"
            return FileAccessProblem(.mode, "\(what) '\(path)' has mode \(SystemFile.octal(info.st_mode)), which \(access); fix it with: chmod \(fix) '\(path)'")
        }
        return nil
    }
}

/// Why a file broke its ``FileAccessRule``: a sentence naming the file, what is wrong and the
/// command that fixes it.
public struct FileAccessProblem: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// Not a regular file (or not a directory).
        case type
        /// Another user owns it.
        case owner
        /// Group or others have a forbidden permission.
        case mode
    }

    public let kind: Kind
    public let description: String

    init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
