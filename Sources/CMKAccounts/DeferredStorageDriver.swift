import CMKCore
import Synchronization

/// A storage driver opened on first use, and opened again on the next use after a failure.
///
/// Opening a driver checks its location (permissions, database header, schema), and one account's
/// bad location must not stop the daemon or `cmkctl` from serving every other account (SPEC §5:
/// one account's failure never stops the others). Built with the opening function instead of the
/// driver, an account whose location cannot be opened fails on each operation with the error that
/// opening gave (a value-free code and a sentence naming the file), while the rest work; once an
/// operator repairs the location, the next operation opens it, without a restart.
public final class DeferredStorageDriver: StorageDriver {
    public let account: String
    private let open: @Sendable () throws -> any StorageDriver
    private let opened = Mutex<(any StorageDriver)?>(nil)

    /// - Parameters:
    ///   - account: the account the driver serves.
    ///   - open: opens the real driver; called again after each failure until it succeeds.
    public init(account: String, open: @escaping @Sendable () throws -> any StorageDriver) {
        self.account = account
        self.open = open
    }

    /// The opened driver; throws what opening it threw, naming the account.
    public func driver() throws -> any StorageDriver {
        if let driver = opened.withLock({ $0 }) { return driver }
        // Opened outside the lock: opening touches the disk, and only one task uses an account
        // at a time in a pass; a second opener at worst opens twice and keeps the first.
        let fresh = try open()
        return opened.withLock { current in
            if let current { return current }
            current = fresh
            return fresh
        }
    }

    public func readKeyring() async throws -> Keyring? { try await driver().readKeyring() }

    public func replaceKeyring(_ keyring: Keyring, expectedGeneration: UInt64?) async throws {
        try await driver().replaceKeyring(keyring, expectedGeneration: expectedGeneration)
    }

    public func makeObjectWriter(_ name: ObjectName) async throws -> any ObjectWriter { try await driver().makeObjectWriter(name) }

    public func openObject(_ name: ObjectName) async throws -> any ObjectReader { try await driver().openObject(name) }

    public func listObjects() async throws -> [ObjectName] { try await driver().listObjects() }

    public func deleteObject(_ name: ObjectName, ifRevision revision: ObjectRevision?) async throws {
        try await driver().deleteObject(name, ifRevision: revision)
    }
}
