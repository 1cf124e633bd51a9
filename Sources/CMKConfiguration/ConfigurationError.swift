import CMKCore

/// Why a configuration file was refused. The daemon exits with ``exitCode`` (78, `EX_CONFIG`) when
/// loading fails at start-up, and keeps the running configuration when a reload fails.
///
/// Equality compares the code only. ``codeName`` is value-free (safe as a metric label or journal
/// field); ``description`` names the file, the key path and the value, and says what is accepted:
///
/// ```
/// /etc/cmk-syncer/cmk-syncer.yaml: accounts[1].kind: 'blob' is not a storage kind (accepted: file, sql, audit, analytics, secret-store)
/// ```
public struct ConfigurationError: CategorizedError, Hashable {
    /// What kind of mistake the file holds.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: String, Hashable, Sendable {
            case fileMissing = "configuration.file-missing"
            case unreadable = "configuration.unreadable"
            case unsafeFile = "configuration.unsafe-file"
            case syntax = "configuration.syntax"
            case empty = "configuration.empty"
            case wrongType = "configuration.wrong-type"
            case unknownKey = "configuration.unknown-key"
            case missingKey = "configuration.missing-key"
            case invalidValue = "configuration.invalid-value"
            case duplicate = "configuration.duplicate"
            case inlineSecret = "configuration.inline-secret"
            case unavailable = "configuration.unavailable"
            case credentialsDirectoryMissing = "configuration.credentials-directory-missing"
        }
        fileprivate let backing: Backing
        fileprivate init(_ backing: Backing) { self.backing = backing }

        /// The configuration file does not exist.
        public static let fileMissing = Code(.fileMissing)
        /// The file exists but cannot be read (permissions, a directory, not UTF-8, too large).
        public static let unreadable = Code(.unreadable)
        /// Someone other than this process's user or root could change the file: it is a symbolic
        /// link, group or others may write it or the directory holding it, or another user owns either.
        public static let unsafeFile = Code(.unsafeFile)
        /// The file is not valid YAML (or holds more than one document, or a key twice).
        public static let syntax = Code(.syntax)
        /// The file holds no document (only comments or whitespace).
        public static let empty = Code(.empty)
        /// A value has the wrong YAML type (a list where a mapping belongs, text where a number belongs).
        public static let wrongType = Code(.wrongType)
        /// A key this version does not know.
        public static let unknownKey = Code(.unknownKey)
        /// A required key is absent, or a pair of keys where exactly one is needed is not.
        public static let missingKey = Code(.missingKey)
        /// A value of the right type that is not accepted (out of range, not a duration, a bad path).
        public static let invalidValue = Code(.invalidValue)
        /// Two accounts share a name or a location.
        public static let duplicate = Code(.duplicate)
        /// A key that would carry a secret inline; secrets come from files or systemd credentials.
        public static let inlineSecret = Code(.inlineSecret)
        /// A known setting that this build does not provide (such as the `azure` vault provider).
        public static let unavailable = Code(.unavailable)
        /// The master key is a systemd credential but `$CREDENTIALS_DIRECTORY` is not set.
        public static let credentialsDirectoryMissing = Code(.credentialsDirectoryMissing)

        public var description: String { backing.rawValue }
    }

    /// The exit status of a daemon that cannot start because of its configuration (`EX_CONFIG`).
    public static let exitCode: Int32 = 78

    public let code: Code
    /// What is wrong and what would be accepted. Never holds secret material or the file's
    /// content beyond a short excerpt of one value.
    public let reason: String
    /// The key the error is about, such as `accounts[2].kind` (list indices count from 0);
    /// nil for errors about the file as a whole.
    public let keyPath: String?
    /// The configuration file, as given to ``SyncerConfiguration/load(path:environment:)``.
    public let file: String
    /// The line (from 1) of the offending node, when known.
    public let line: Int?
    /// The column (from 1) of the offending node, when known.
    public let column: Int?

    public init(_ code: Code, _ reason: String, keyPath: String? = nil, file: String, line: Int? = nil, column: Int? = nil) {
        self.code = code
        self.reason = reason
        self.keyPath = keyPath
        self.file = file
        self.line = line
        self.column = column
    }

    public var codeName: String { code.description }

    /// Always ``ErrorCategory/configuration``: retrying without editing the file will not help.
    public var category: ErrorCategory { .configuration }

    public var description: String {
        if let keyPath, !keyPath.isEmpty { return "\(file): \(keyPath): \(reason)" }
        if let line, let column { return "\(file):\(line):\(column): \(reason)" }
        return "\(file): \(reason)"
    }

    public static func == (lhs: ConfigurationError, rhs: ConfigurationError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
