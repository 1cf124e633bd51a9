import CMKCore

/// One storage account as the syncer and the data plane see it: a name, a kind (a label), the
/// driver that keeps its keyring and objects, and the root key it must be bound to.
public struct Account: Sendable {
    public let name: String
    public let kind: StorageKind
    public let driver: any StorageDriver
    public let key: KeyReference
    /// The leases that share the account's rebinds with other daemons (SPEC §12); nil where the
    /// storage is not shared (directory, SQLite): the pass then writes without a lease.
    public let leases: (any RebindLeases)?

    public init(name: String, kind: StorageKind, driver: any StorageDriver, key: KeyReference, leases: (any RebindLeases)? = nil) {
        self.name = name
        self.kind = kind
        self.driver = driver
        self.key = key
        self.leases = leases
    }
}
