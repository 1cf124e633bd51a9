import Synchronization

/// One key name's state in a store: the live key, or the soft-deleted one, or neither. Key Vault
/// never holds both (a deleted name cannot be created again until it is recovered or purged).
public struct KeyEntry: Sendable {
    public var live: KeyRecord?
    public var deleted: DeletedKeyRecord?

    public init(live: KeyRecord? = nil, deleted: DeletedKeyRecord? = nil) {
        self.live = live
        self.deleted = deleted
    }
}

/// Where ``KeyVaultAPI`` keeps its keys. Every change is one call of ``withEntry(_:_:)``: the store
/// runs the closure with exclusive access to that name's entry and keeps what the closure leaves
/// (nothing, if it throws). Reads take ``entry(_:)`` and write nothing.
public protocol KeyRecordStore: Sendable {
    /// The entry of `name` (already lowercased) as it is now.
    func entry(_ name: String) throws -> KeyEntry
    /// Runs `body` on the entry of `name` (already lowercased) and stores the result.
    func withEntry<R>(_ name: String, _ body: (inout KeyEntry) throws -> R) throws -> R
    /// Every entry that holds a live or a deleted key.
    func entries() throws -> [KeyEntry]
}

/// Keys in memory, for tests: lost when the process ends.
public final class InMemoryKeyRecordStore: KeyRecordStore {
    private let state = Mutex<[String: KeyEntry]>([:])

    public init() {}

    public func withEntry<R>(_ name: String, _ body: (inout KeyEntry) throws -> R) throws -> R {
        try state.withLock { state in
            var entry = state[name] ?? KeyEntry()
            let result = try body(&entry)
            state[name] = entry.live == nil && entry.deleted == nil ? nil : entry
            return result
        }
    }

    public func entry(_ name: String) throws -> KeyEntry {
        state.withLock { $0[name] ?? KeyEntry() }
    }

    public func entries() throws -> [KeyEntry] {
        state.withLock { Array($0.values) }
    }
}
