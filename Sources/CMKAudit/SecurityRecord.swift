import Foundation

/// One line of the security log: an entry plus its place in the hash chain.
///
/// The stored line is the canonical encoding of every field (see `docs/security-log.md`);
/// ``hash`` is the SHA-256 of the canonical encoding without `hash`, and ``prev`` is the
/// previous record's ``hash`` (64 zeros for the first record).
public struct SecurityRecord: Sendable, Hashable {
    /// The `prev` of the first record.
    public static let genesisHash = String(repeating: "0", count: 64)

    /// Position in the log, 1-based and consecutive.
    public let seq: Int
    /// When the record was appended, to the millisecond.
    public let time: Date
    /// What happened.
    public let event: SecurityEvent
    /// The storage account concerned, if any.
    public let account: String?
    /// The root key concerned, if any.
    public let key: String?
    /// The key version concerned, if any.
    public let version: String?
    /// The version bound before a rebind, if any.
    public let previousVersion: String?
    /// Who did it.
    public let actor: SecurityActor
    /// Small extra values; never key material.
    public let details: [String: String]
    /// Lowercase hex SHA-256 of the previous record's canonical encoding.
    public let prev: String
    /// Lowercase hex SHA-256 of this record's canonical encoding (which leaves `hash` out).
    public let hash: String

    /// Builds a record from an entry and computes its hash. `time` is cut to whole milliseconds.
    public init(seq: Int, time: Date, entry: SecurityLogEntry, prev: String) {
        self.init(
            seq: seq, time: RFC3339.truncatedToMilliseconds(time), event: entry.event, account: entry.account, key: entry.key,
            version: entry.version, previousVersion: entry.previousVersion, actor: entry.actor, details: entry.details,
            prev: prev, hash: ""
        )
        self = self.withHash(CanonicalJSON.sha256Hex(self.canonicalBytes(includingHash: false)))
    }

    init(
        seq: Int, time: Date, event: SecurityEvent, account: String?, key: String?, version: String?,
        previousVersion: String?, actor: SecurityActor, details: [String: String], prev: String, hash: String
    ) {
        self.seq = seq
        self.time = time
        self.event = event
        self.account = account
        self.key = key
        self.version = version
        self.previousVersion = previousVersion
        self.actor = actor
        self.details = details
        self.prev = prev
        self.hash = hash
    }

    private func withHash(_ hash: String) -> SecurityRecord {
        SecurityRecord(
            seq: seq, time: time, event: event, account: account, key: key, version: version,
            previousVersion: previousVersion, actor: actor, details: details, prev: prev, hash: hash
        )
    }

    /// The entry this record was made from.
    public var entry: SecurityLogEntry {
        SecurityLogEntry(event: event, account: account, key: key, version: version, previousVersion: previousVersion, actor: actor, details: details)
    }

    /// The SHA-256 (lowercase hex) of the canonical encoding without `hash`: what ``hash`` must be.
    public var computedHash: String { CanonicalJSON.sha256Hex(canonicalBytes(includingHash: false)) }

    /// The canonical encoding: a JSON object with keys in byte order, no whitespace, absent
    /// optionals left out. With `includingHash` it is the stored line (without the newline).
    public func canonicalBytes(includingHash: Bool) -> [UInt8] {
        var members: [(String, CanonicalJSON.Value)] = [
            ("seq", .integer(seq)),
            ("time", .string(RFC3339.format(time))),
            ("event", .string(event.rawValue)),
            ("actor", .string(actor.description)),
            ("details", .object(details.map { ($0.key, .string($0.value)) })),
            ("prev", .string(prev)),
        ]
        if let account { members.append(("account", .string(account))) }
        if let key { members.append(("key", .string(key))) }
        if let version { members.append(("version", .string(version))) }
        if let previousVersion { members.append(("previousVersion", .string(previousVersion))) }
        if includingHash { members.append(("hash", .string(hash))) }
        return CanonicalJSON.encode(.object(members))
    }
}
