import CMKCore
import Foundation
import Synchronization

/// A ``StorageDriver`` that keeps everything in memory, for unit tests.
///
/// It honours the whole contract (compare-and-swap on the keyring, atomic and conditional object
/// writes, readers that keep reading the revision they opened) and passes
/// ``StorageDriverConformance``. Several drivers may share one ``Store`` to play "two syncers
/// on the same location".
public final class InMemoryStorageDriver: StorageDriver {
    /// The shared state of one in-memory location. Share it between drivers to simulate two
    /// processes using the same storage.
    public final class Store: Sendable {
        struct StoredObject: Sendable {
            var revision: ObjectRevision
            var bytes: Data
        }

        struct State: Sendable {
            var keyring: Keyring?
            var objects: [ObjectName: StoredObject] = [:]
            var nextRevision: UInt64 = 1
        }

        let state = Mutex(State())

        /// Creates an empty location.
        public init() {}

        /// The number of committed objects (for assertions).
        public var objectCount: Int { state.withLock { $0.objects.count } }
    }

    /// The chunk size readers hand out.
    public static let chunkSize = 64 * 1024

    public let account: String
    /// The location this driver reads and writes.
    public let store: Store

    /// Creates a driver for `account` on `store` (a fresh, empty one by default).
    public init(account: String, store: Store = Store()) {
        self.account = account
        self.store = store
    }

    public func readKeyring() async throws -> Keyring? {
        store.state.withLock { $0.keyring }
    }

    public func replaceKeyring(_ keyring: Keyring, expectedGeneration: UInt64?) async throws {
        let wanted = (expectedGeneration ?? 0) + 1
        guard keyring.generation == wanted else {
            throw StorageError(.corrupt, "refusing to store keyring generation \(keyring.generation) of account '\(account)': it must be \(wanted)")
        }
        guard keyring.account == account else {
            throw StorageError(.wrongAccount, "refusing to store a keyring of account '\(keyring.account)' for account '\(account)'")
        }
        do { try keyring.validate() } catch {
            throw StorageError(.corrupt, "refusing to store an invalid keyring for account '\(account)'", underlying: error)
        }
        try store.state.withLock { state in
            let current = state.keyring?.generation
            guard current == expectedGeneration else {
                throw StorageError(.conflict, "keyring of account '\(account)' is at generation \(current.map(String.init) ?? "none"), not \(expectedGeneration.map(String.init) ?? "none")")
            }
            state.keyring = keyring
        }
    }

    public func makeObjectWriter(_ name: ObjectName) async throws -> any ObjectWriter {
        Writer(account: account, name: name, store: store)
    }

    public func openObject(_ name: ObjectName) async throws -> any ObjectReader {
        guard let object = store.state.withLock({ $0.objects[name] }) else {
            throw StorageError(.notFound, "object '\(name)' of account '\(account)' does not exist")
        }
        return Reader(revision: object.revision, bytes: object.bytes)
    }

    public func listObjects() async throws -> [ObjectName] {
        store.state.withLock { $0.objects.keys.sorted() }
    }

    public func deleteObject(_ name: ObjectName, ifRevision revision: ObjectRevision?) async throws {
        try store.state.withLock { state in
            guard let object = state.objects[name] else {
                throw StorageError(.notFound, "object '\(name)' of account '\(account)' does not exist")
            }
            if let revision, object.revision != revision {
                throw StorageError(.conflict, "object '\(name)' of account '\(account)' is at revision \(object.revision), not \(revision)")
            }
            state.objects[name] = nil
        }
    }

    /// Buffers an object in memory (fine for a test fake) and publishes it under the store's lock.
    final class Writer: ObjectWriter {
        private struct State {
            var buffer = Data()
            var finished = false
        }

        let account: String
        let name: ObjectName
        let store: Store
        private let state = Mutex(State())

        init(account: String, name: ObjectName, store: Store) {
            self.account = account
            self.name = name
            self.store = store
        }

        func write(_ bytes: Data) async throws {
            try state.withLock { state in
                guard !state.finished else {
                    throw StorageError(.io, "writer for object '\(name)' of account '\(account)' is already committed or aborted")
                }
                state.buffer.append(bytes)
            }
        }

        func commit(_ condition: WriteCondition) async throws -> ObjectRevision {
            let bytes = try state.withLock { state in
                guard !state.finished else {
                    throw StorageError(.io, "writer for object '\(name)' of account '\(account)' is already committed or aborted")
                }
                return state.buffer
            }
            let revision = try store.state.withLock { stored in
                let current = stored.objects[name]
                try condition.check(current: current?.revision, object: name, account: account)
                let revision = ObjectRevision("mem-\(stored.nextRevision)")
                stored.nextRevision += 1
                stored.objects[name] = .init(revision: revision, bytes: bytes)
                return revision
            }
            state.withLock { $0 = State(buffer: Data(), finished: true) }
            return revision
        }

        func abort() async {
            state.withLock { $0 = State(buffer: Data(), finished: true) }
        }
    }

    /// Hands out a copy of the bytes of one revision, so later writes cannot affect it.
    final class Reader: ObjectReader {
        let revision: ObjectRevision
        private let bytes: Data
        private let offset = Mutex(0)

        init(revision: ObjectRevision, bytes: Data) {
            self.revision = revision
            self.bytes = bytes
        }

        func next() async throws -> Data? {
            offset.withLock { offset in
                guard offset < bytes.count else { return nil }
                let end = min(offset + InMemoryStorageDriver.chunkSize, bytes.count)
                let chunk = bytes.subdata(in: bytes.startIndex + offset ..< bytes.startIndex + end)
                offset = end
                return chunk
            }
        }

        func close() async {
            offset.withLock { $0 = bytes.count }
        }
    }
}
