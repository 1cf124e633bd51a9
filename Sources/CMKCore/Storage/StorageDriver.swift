import Foundation

/// Where one storage account keeps its keyring and its encrypted objects (SPEC §4).
///
/// Every driver guarantees:
/// - the keyring is replaced atomically and only if its generation is still the expected one
///   (compare-and-swap), across processes and hosts that share the location;
/// - an object is replaced atomically: a reader sees the old or the new bytes, never a mix;
/// - a conditional object write succeeds only if the object is unchanged since it was read;
/// - a crash at any point leaves the last committed keyring and every committed object readable.
///
/// Drivers store bytes; they never see plaintext data or DEKs. Drivers throw ``StorageError``.
public protocol StorageDriver: Sendable {
    /// The account this driver serves.
    var account: String { get }

    /// The stored keyring, or nil if the account has none yet.
    func readKeyring() async throws -> Keyring?

    /// Stores `keyring` if the stored generation equals `expectedGeneration` (nil: no keyring yet).
    /// `keyring.generation` must be `expectedGeneration + 1` (or 1 when creating).
    /// Throws `.conflict` when another writer got there first.
    func replaceKeyring(_ keyring: Keyring, expectedGeneration: UInt64?) async throws

    /// Starts writing an object. Nothing is visible until ``ObjectWriter/commit(_:)``.
    func makeObjectWriter(_ name: ObjectName) async throws -> any ObjectWriter

    /// Opens an object for reading in chunks; throws `.notFound` if it does not exist.
    func openObject(_ name: ObjectName) async throws -> any ObjectReader

    /// The names of all committed objects, sorted.
    func listObjects() async throws -> [ObjectName]

    /// Deletes an object; with a revision, only if it is unchanged. Throws `.notFound` if absent.
    func deleteObject(_ name: ObjectName, ifRevision revision: ObjectRevision?) async throws
}

/// When an object write may take effect.
public enum WriteCondition: Hashable, Sendable {
    /// Always (create or replace).
    case always
    /// Only if no object of that name exists.
    case ifAbsent
    /// Only if the object still has this revision (lazy re-encryption).
    case ifRevision(ObjectRevision)
}

/// Identifies one committed state of an object; changes with every write.
public struct ObjectRevision: Hashable, Sendable, Codable, CustomStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { value }
}

/// Streams an object's bytes into storage.
public protocol ObjectWriter: Sendable {
    /// Appends bytes. Drivers keep memory bounded (they spill to a file or a table).
    func write(_ bytes: Data) async throws
    /// Makes the object visible atomically if `condition` holds; returns its new revision.
    /// Throws `.conflict` (or `.alreadyExists` for `.ifAbsent`) and leaves the stored object untouched otherwise.
    func commit(_ condition: WriteCondition) async throws -> ObjectRevision
    /// Discards everything written. Safe to call after a failed commit.
    func abort() async
}

/// Streams an object's bytes out of storage, from one committed revision.
public protocol ObjectReader: Sendable {
    /// The revision being read.
    var revision: ObjectRevision { get }
    /// The next chunk (any size up to ~1 MiB), or nil at the end.
    func next() async throws -> Data?
    /// Releases the reader's resources.
    func close() async
}

/// An object's name within its account: 1–255 bytes of `A-Z a-z 0-9 . _ -` and `/`, not starting
/// with `.` or `/`, without `..` or `//` segments.
public struct ObjectName: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public let value: String

    public init(_ value: String) throws {
        let bytes = Array(value.utf8)
        let allowed = bytes.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x2D || b == 0x2F
        }
        let segments = value.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...255).contains(bytes.count), allowed, bytes.first != 0x2E, bytes.first != 0x2F, bytes.last != 0x2F,
              !segments.contains(where: { $0.isEmpty || $0 == ".." || $0 == "." || $0.hasPrefix(".") })
        else {
            throw StorageError(.invalidName, "object name '\(value)' is invalid: use 1-255 characters of A-Z a-z 0-9 . _ - and '/', no empty, '.' or '..' segments, no segment starting with '.'")
        }
        self.value = value
    }

    public var description: String { value }
    public static func < (lhs: ObjectName, rhs: ObjectName) -> Bool { lhs.value < rhs.value }

    /// The names a driver read back from its store, checked and sorted, as `listObjects` returns
    /// them. A name the store should never have accepted is `.corrupt`, naming `store` (e.g.
    /// "database '/path'"): it was written by something else, or damaged.
    public static func stored(_ texts: [String], in store: @autoclosure () -> String) throws -> [ObjectName] {
        try texts.map { text in
            do { return try ObjectName(text) } catch {
                throw StorageError(.corrupt, "\(store()) holds an object with the invalid name '\(text)'")
            }
        }.sorted()
    }
}

/// The storage kinds of SPEC §1. Kinds are labels with a default driver, not code paths.
public enum StorageKind: String, Hashable, Sendable, Codable, CaseIterable {
    case file
    case sql
    case audit
    case analytics
    case secretStore = "secret-store"

    /// The driver used when the configuration does not name one.
    public var defaultDriver: String {
        switch self {
        case .file, .audit: return "directory"
        case .sql, .analytics, .secretStore: return "sqlite"
        }
    }
}

extension WriteCondition {
    /// Throws unless a write under this condition may replace an object whose committed revision
    /// is `current` (nil: absent). Every driver calls it inside its lock or transaction.
    public func check(current: ObjectRevision?, object: ObjectName, account: String) throws {
        switch self {
        case .always:
            return
        case .ifAbsent:
            if current != nil {
                throw StorageError(.alreadyExists, "object '\(object)' of account '\(account)' already exists")
            }
        case .ifRevision(let expected):
            guard current == expected else {
                throw StorageError(.conflict, "object '\(object)' of account '\(account)' is at revision \(current?.value ?? "none"), not \(expected)")
            }
        }
    }
}
