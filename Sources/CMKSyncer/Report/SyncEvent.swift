import Foundation

/// Something a pass noticed or did that operators must hear about: logged to the journal with a
/// MESSAGE_ID from the catalog, and appended to the security log.
public struct SyncEvent: Hashable, Sendable, Codable {
    public enum Kind: String, Hashable, Sendable, Codable, CaseIterable {
        case keyRotated = "key-rotated"
        case accountRebound = "account-rebound"
        case accountCreated = "account-created"
        case keyPulled = "key-pulled"
        case accountSuspended = "account-suspended"
        case keyRestored = "key-restored"
        case accountResumed = "account-resumed"
        case keyMissing = "key-missing"
        case versionDisabledInUse = "version-disabled-in-use"
        case currentVersionUnusable = "current-version-unusable"
        case vaultUnreachable = "vault-unreachable"
        case credentialsRejected = "credentials-rejected"
        case versionSafeToDisable = "version-safe-to-disable"
        case accountFailed = "account-failed"
        /// An account that had a keyring has none now (critical; nothing is created).
        case keyringMissing = "keyring-missing"
        /// An account's keyring names versions the key does not have (critical).
        case versionUnknown = "version-unknown"
        /// The current version expires within `sync.expiry-warning` (once per version).
        case keyNearExpiry = "key-near-expiry"
    }

    public var kind: Kind
    /// Static sentence; values are in `fields`.
    public var message: String
    public var account: String?
    public var version: String?
    public var previousVersion: String?
    /// Extra fields (journal field names without the `CMK_` prefix, lower-case here).
    public var fields: [String: String]

    public init(_ kind: Kind, _ message: String, account: String? = nil, version: String? = nil,
                previousVersion: String? = nil, fields: [String: String] = [:]) {
        self.kind = kind
        self.message = message
        self.account = account
        self.version = version
        self.previousVersion = previousVersion
        self.fields = fields
    }
}
