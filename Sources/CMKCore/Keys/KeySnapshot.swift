import Foundation

/// What the vault says about a root key at one instant (SPEC §5 step 1).
public enum KeySnapshot: Hashable, Sendable, Codable {
    /// The key exists with these versions.
    case present(KeyState)
    /// The key is soft-deleted (pulled) and can still be recovered until `scheduledPurge`.
    case deleted(DeletedKey)
    /// The key does not exist: purged, never created, or the configuration names the wrong key.
    case missing(KeyReference)

    /// The key's name.
    public var key: KeyReference {
        switch self {
        case .present(let state): return state.key
        case .deleted(let deleted): return deleted.key
        case .missing(let key): return key
        }
    }
}

/// A present key and its versions.
public struct KeyState: Hashable, Sendable, Codable {
    public var key: KeyReference
    /// Every version, oldest first (ordered by creation, ties broken by the provider's order).
    public var versions: [KeyVersion]

    public init(key: KeyReference, versions: [KeyVersion]) {
        self.key = key
        self.versions = versions.enumerated()
            .sorted { ($0.element.created, $0.offset) < ($1.element.created, $1.offset) }
            .map(\.element)
    }

    /// The newest version, whatever its attributes.
    public var current: KeyVersion? { versions.last }

    /// The version with this id.
    public func version(_ id: String) -> KeyVersion? { versions.first { $0.id == id } }

    /// The newest version that may wrap at `now`, if any.
    public func newestWrappable(at now: Date) -> KeyVersion? {
        versions.last { $0.canWrap(at: now) }
    }
}

/// A soft-deleted key.
public struct DeletedKey: Hashable, Sendable, Codable {
    public var key: KeyReference
    /// When the key was deleted.
    public var deletedDate: Date
    /// When the vault will purge it; after that the data is unrecoverable.
    public var scheduledPurgeDate: Date?
    /// The versions as they were at deletion, when the provider reports them.
    public var versions: [KeyVersion]

    public init(key: KeyReference, deletedDate: Date, scheduledPurgeDate: Date?, versions: [KeyVersion] = []) {
        self.key = key
        self.deletedDate = deletedDate
        self.scheduledPurgeDate = scheduledPurgeDate
        self.versions = versions
    }
}
