import CMKCore
import Foundation

/// What happened, as the service reports it: the input of ``VaultSecurityLog/append(_:at:)``.
/// Ids, names, addresses and reasons only; never a secret or a token.
public struct SecurityLogEvent: Sendable, Hashable {
    public var operation: String
    public var actor: String?
    public var role: String?
    public var address: String
    public var details: [String: String]

    public init(operation: String, actor: String? = nil, role: String? = nil, address: String, details: [String: String] = [:]) {
        self.operation = operation
        self.actor = actor
        self.role = role
        self.address = address
        self.details = details
    }
}

/// One record of the security log. Its canonical JSON (``leaf``: sorted keys, no whitespace,
/// absent actor/role omitted) is the Merkle leaf: the API serves exactly those bytes, so a
/// customer hashes what it received.
public struct SecurityLogRecord: Codable, Sendable, Hashable {
    public var index: UInt64
    /// RFC 3339 in UTC with milliseconds (`2026-12-05T07:35:05.123Z`): fixed width, so text order is time order.
    public var time: String
    public var operation: String
    public var actor: String?
    public var role: String?
    public var address: String
    public var details: [String: String]

    public init(index: UInt64, time: String, event: SecurityLogEvent) {
        self.index = index
        self.time = time
        operation = event.operation
        actor = event.actor
        role = event.role
        address = event.address
        details = event.details
    }

    /// The canonical JSON bytes: the leaf.
    public func canonicalJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// Parses a leaf back into its record.
    public init(leaf: Data) throws {
        self = try JSONDecoder().decode(Self.self, from: leaf)
    }

    /// `date` as a record's time: RFC 3339, UTC, milliseconds.
    public static func timeText(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    /// Parses an RFC 3339 time (with or without fractions, any offset); nil when it is not one.
    /// Never through ICU's formatter, which traps on a long fraction (``RFC3339``).
    public static func parseTime(_ text: String) -> Date? {
        RFC3339.parse(text)
    }
}
