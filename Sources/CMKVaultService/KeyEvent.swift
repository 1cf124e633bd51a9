import Foundation

/// A change of a key that subscribers (the host daemons) should hear about at once: the source of
/// the events the service pushes (docs/vault-service.md, "Events"). Raised after the change is
/// durable in the vault, by the keys API's routes and by the rotation-policy scheduler.
///
/// The first three are Azure Event Grid's Key Vault event types; Event Grid has none for a deleted,
/// recovered or purged key, so those are the service's own types in the same schema.
public struct KeyEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// A new version was created (create on an existing name, rotate, or the policy's Rotate).
        case newVersionCreated = "Microsoft.KeyVault.KeyNewVersionCreated"
        /// The current version expires soon (the policy's Notify, or the default warning window).
        case nearExpiry = "Microsoft.KeyVault.KeyNearExpiry"
        /// The current version has expired.
        case expired = "Microsoft.KeyVault.KeyExpired"
        /// The key was soft-deleted (the customer's pull).
        case deleted = "CMK.KeyVault.KeyDeleted"
        /// A deleted key was recovered (the customer's restore).
        case recovered = "CMK.KeyVault.KeyRecovered"
        /// A deleted key was purged: it can never come back.
        case purged = "CMK.KeyVault.KeyPurged"
        /// A version that hosts still use was disabled or expired through the keys API (the
        /// request succeeds as on Azure; the security log holds `disabled-in-use`).
        case versionDisabledInUse = "CMK.KeyVault.KeyVersionDisabledInUse"
    }

    public var kind: Kind
    /// The key's name as the customer spelled it.
    public var keyName: String
    /// The version concerned (the new one, the expiring one); nil for deleted, recovered, purged.
    public var version: String?
    /// The version's not-before and expiry, Unix seconds, when it has them.
    public var notBefore: Int?
    public var expires: Int?
    /// When the change happened.
    public var time: Date

    public init(kind: Kind, keyName: String, version: String? = nil, notBefore: Int? = nil, expires: Int? = nil, time: Date = Date()) {
        self.kind = kind
        self.keyName = keyName
        self.version = version
        self.notBefore = notBefore
        self.expires = expires
        self.time = time
    }
}

/// Where raised ``KeyEvent``s go. Must not block: delivery happens elsewhere (a lost event only
/// costs the subscribers latency; they still poll).
public protocol KeyEventSink: Sendable {
    func publish(_ event: KeyEvent)
}
