/// What a security-log record is about. The raw value is what the log stores in `event`.
public enum SecurityEvent: String, Sendable, Hashable, Codable, CaseIterable {
    /// The vault has a newer usable root-key version than an account is bound to.
    case keyRotationNoticed = "key-rotation-noticed"
    /// An account's keyring was re-bound to another key version (`version`, `previousVersion`).
    case rebind
    /// A new DEK was minted and wrapped for an account (`details["dek"]` is its id, never the key).
    case dekMinted = "dek-minted"
    /// An account was suspended because its root key can no longer be used.
    case accountSuspended = "account-suspended"
    /// A suspension was lifted; the account serves data again.
    case accountResumed = "account-resumed"
    /// The root key was deleted (soft-deleted) in the vault.
    case keyPulled = "key-pulled"
    /// A soft-deleted root key was recovered.
    case keyRestored = "key-restored"
    /// The root key is purged or cannot be found at all.
    case keyPurgedOrMissing = "key-purged-or-missing"
    /// A key version that wraps live DEKs was disabled in the vault.
    case versionDisabledInUse = "version-disabled-in-use"
    /// Nothing depends on a key version any more; the customer may disable it.
    case versionSafeToDisable = "version-safe-to-disable"
    /// An operator ran a state-changing `cmkctl` command (`actor` names the local user).
    case operatorAction = "operator-action"
    /// The daemon started.
    case daemonStarted = "daemon-started"
    /// The daemon stopped.
    case daemonStopped = "daemon-stopped"
    /// The daemon reloaded its configuration.
    case configurationReloaded = "configuration-reloaded"
    /// The log itself found a torn last line (a crash mid-write) and repaired it before appending.
    case logRepaired = "log-repaired"
    /// Records the daemon could not write and could not keep until the log could be appended
    /// again (more than it keeps in memory, or held when it stopped): `details` says how many,
    /// of which events, and between which times. The journal has each of them.
    case logGap = "log-gap"
    /// The key-state probe saw a change a pass acts on and started a pass (`details.changes`).
    case keyChangeProbed = "key-change-probed"
}
