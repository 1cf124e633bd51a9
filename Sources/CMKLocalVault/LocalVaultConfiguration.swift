import CMKCore
import Foundation

/// How the local vault is set up. Validated when a ``LocalVault`` is opened.
public struct LocalVaultConfiguration: Sendable {
    /// The vault directory (`URL`, required, not secret). Created with mode 0700 if missing; it
    /// must be owned by the current user and must not be writable by group or others. Holds
    /// `vault.json`, `keys/<name>.json` and the lock file `.lock`.
    public var directory: URL

    /// Where the 32-byte master key that seals private keys at rest comes from
    /// (``MasterKeySource``, required, **secret**).
    public var masterKey: MasterKeySource

    /// How many days a deleted key is kept before its scheduled purge date (`Int`, default 90,
    /// allowed 7–90 as in Azure Key Vault, not secret).
    public var retentionDays: Int

    /// Whether a deleted key may be purged only on or after its scheduled purge date (`Bool`,
    /// default `true`, not secret). Without it, a deleted key can be purged at any time.
    public var purgeProtection: Bool

    /// The source of "now" for dates and validity checks (`any WallClock`, default the system
    /// clock, not secret). Tests inject a manual clock.
    public var clock: any WallClock

    /// The default retention in days.
    public static let defaultRetentionDays = 90
    /// The retention days the vault accepts.
    public static let allowedRetentionDays = 7...90

    /// A configuration; call ``validate()`` (or open a ``LocalVault``) to check it.
    public init(directory: URL, masterKey: MasterKeySource, retentionDays: Int = defaultRetentionDays,
                purgeProtection: Bool = true, clock: any WallClock = SystemWallClock()) {
        self.directory = directory
        self.masterKey = masterKey
        self.retentionDays = retentionDays
        self.purgeProtection = purgeProtection
        self.clock = clock
    }

    /// Checks the values that do not need the file system.
    public func validate() throws(VaultError) {
        guard Self.allowedRetentionDays.contains(retentionDays) else {
            throw VaultError(.misconfigured, "local vault retentionDays is \(retentionDays); use a whole number of days from 7 to 90 (default 90)")
        }
        guard directory.isFileURL else {
            throw VaultError(.misconfigured, "local vault directory '\(directory)' is not a file URL")
        }
    }
}

/// Where the local vault's master key comes from. The key itself is **secret**: 32 bytes, stored
/// either raw or as base64 text (a trailing newline is allowed).
public enum MasterKeySource: Sendable, CustomStringConvertible {
    /// A file that must be a regular file owned by the current user with mode 0600 or stricter
    /// (the vault refuses to start otherwise). ``LocalVault/createMasterKeyFile(at:)`` makes one.
    case file(URL)
    /// A systemd credential (`LoadCredential=`/`LoadCredentialEncrypted=`): the file `name` in
    /// `credentialsDirectory`, or in `$CREDENTIALS_DIRECTORY` when that is nil. systemd manages the
    /// permissions of credential directories, so no mode check is made.
    case systemdCredential(name: String, credentialsDirectory: URL? = nil)
    /// Key bytes already in memory (embedding and tests).
    case bytes(SecretBytes)

    public var description: String {
        switch self {
        case .file(let url): return "file \(url.path)"
        case .systemdCredential(let name, let directory):
            return "systemd credential '\(name)'" + (directory.map { " in \($0.path)" } ?? "")
        case .bytes: return "in-memory key <redacted>"
        }
    }
}
