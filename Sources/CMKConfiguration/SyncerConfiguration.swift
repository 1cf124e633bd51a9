import CMKCore
import Foundation

/// The daemon's configuration: one YAML file (default ``defaultPath``; the daemon's `--config`
/// overrides it), validated strictly by ``load(path:environment:)``. The key-by-key reference is
/// `docs/configuration.md`.
///
/// Every path in a loaded configuration is absolute and normalised. No secret is ever held here:
/// the vault master key is named by a file or a systemd credential, never given inline.
public struct SyncerConfiguration: Sendable, Hashable {
    /// Where the daemon looks when `--config` is not given.
    public static let defaultPath = "/etc/cmk-syncer/cmk-syncer.yaml"
    /// The state directory when neither the file nor `$STATE_DIRECTORY` sets one.
    public static let defaultStateDirectory = "/var/lib/cmk-syncer"
    /// The runtime directory when neither the file nor `$RUNTIME_DIRECTORY` sets one.
    public static let defaultRuntimeDirectory = "/run/cmk-syncer"

    /// The file this configuration was read from (absolute), or the name given to
    /// ``parse(yaml:file:environment:workingDirectory:)``.
    public var file: String

    /// `state-directory` (path, not secret). Default: the first entry of `$STATE_DIRECTORY`
    /// (systemd's `StateDirectory=`) if set, else `/var/lib/cmk-syncer`. A relative value in the
    /// file resolves against the configuration file's directory; a relative `$STATE_DIRECTORY`
    /// against the working directory. Relative data paths elsewhere in the file
    /// (vault directory, master key file, account locations) resolve against this directory.
    public var stateDirectory: String

    /// `runtime-directory` (path, not secret). Default: the first entry of `$RUNTIME_DIRECTORY`
    /// (systemd's `RuntimeDirectory=`) if set, else `/run/cmk-syncer`. Relative values resolve as
    /// for ``stateDirectory``. Holds the control socket and other runtime files.
    public var runtimeDirectory: String

    /// `vault` (mapping, required): where the root key lives.
    public var vault: Vault

    /// `accounts` (list, required, at least one): the storage accounts to keep encrypted.
    public var accounts: [AccountSettings]

    /// `sync` (mapping, optional): when and how sync passes run.
    public var sync: Sync

    /// `cache` (mapping, optional): the in-memory cache of unwrapped data keys.
    public var cache: Cache

    /// `logging` (mapping, optional): log level and output format.
    public var logging: Logging

    /// `events` (mapping, optional): the receiver of pushed key events; nil (the default) is off.
    public var events: Events?

    /// `metrics` (mapping, optional): the Prometheus endpoint; nil (the default) is off.
    public var metrics: Metrics?

    /// `postgres` (mapping, optional; required when an account's driver is `postgres`): the
    /// PostgreSQL database those accounts live in, served by one connection pool.
    public var postgres: PostgresSettings?

    /// A configuration from already-validated parts (tests and embedding). ``load(path:environment:)``
    /// is the way to get one from a file.
    public init(file: String, stateDirectory: String, runtimeDirectory: String, vault: Vault,
                accounts: [AccountSettings], sync: Sync = Sync(), cache: Cache = Cache(), logging: Logging = Logging(), events: Events? = nil,
                metrics: Metrics? = nil, postgres: PostgresSettings? = nil) {
        self.file = file
        self.stateDirectory = stateDirectory
        self.runtimeDirectory = runtimeDirectory
        self.vault = vault
        self.accounts = accounts
        self.sync = sync
        self.cache = cache
        self.logging = logging
        self.events = events
        self.metrics = metrics
        self.postgres = postgres
    }

    /// The account called `name`, if configured.
    public func account(named name: String) -> AccountSettings? {
        accounts.first { $0.name == name }
    }

    /// The file holding the vault's master key: ``Vault/LocalSettings/masterKeyPath(environment:file:)``
    /// of the local vault. Throws if the master key is a systemd credential and
    /// `$CREDENTIALS_DIRECTORY` is unset, or if the provider is not `local`.
    public func masterKeyPath(environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) -> String {
        guard let local = vault.local else {
            throw ConfigurationError(.unavailable, "the vault provider '\(vault.provider.rawValue)' has no master key", keyPath: "vault.provider", file: file)
        }
        return try local.masterKeyPath(environment: environment, file: file)
    }
}
