import CMKCore

/// One storage account as the syncer and the data plane see it: a name, a kind (a label), the
/// driver that keeps its keyring and objects, and the root key it must be bound to.
public struct Account: Sendable {
    public let name: String
    public let kind: StorageKind
    public let driver: any StorageDriver
    public let key: KeyReference

    public init(name: String, kind: StorageKind, driver: any StorageDriver, key: KeyReference) {
        self.name = name
        self.kind = kind
        self.driver = driver
        self.key = key
    }
}
