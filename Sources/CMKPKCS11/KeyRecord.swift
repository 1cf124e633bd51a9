import CMKCore
import Foundation

/// What a token's key objects cannot hold, kept in one data object per key (`CKO_DATA`,
/// `CKA_APPLICATION` = ``application``, `CKA_LABEL` = the key name, `CKA_VALUE` = this JSON):
/// each version's exact creation, not-before and expiry instants, and the pull (deletion date,
/// scheduled purge, which versions were enabled). Nothing secret. docs/providers/pkcs11.md,
/// "Object mapping" (and why CKA_START_DATE/CKA_END_DATE are not used).
struct KeyRecord: Codable, Hashable, Sendable {
    static let application = "cmk-syncer key record v1"

    struct Dates: Codable, Hashable, Sendable {
        var created: Date
        var notBefore: Date?
        var expires: Date?
    }

    struct Deletion: Codable, Hashable, Sendable {
        var date: Date
        var scheduledPurge: Date
        /// The versions that were enabled (`CKA_UNWRAP` true) when the key was pulled: a restore
        /// enables exactly these again.
        var enabled: [String]
    }

    /// Bumped by every write; of two records (an interrupted replacement) the higher wins.
    var revision = 0
    var versions: [String: Dates] = [:]
    var deleted: Deletion?

    /// Instants are stored as whole milliseconds since 1970; ``normalised(_:)`` is what reading one back gives.
    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }
    static func date(milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
    static func normalised(_ date: Date) -> Date { self.date(milliseconds: milliseconds(date)) }

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Self.milliseconds(date))
        }
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(self)) ?? Data("{}".utf8))
    }

    static func decode(_ bytes: [UInt8], key: KeyReference) throws(VaultError) -> KeyRecord {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            Self.date(milliseconds: try decoder.singleValueContainer().decode(Int64.self))
        }
        do {
            return try decoder.decode(KeyRecord.self, from: Data(bytes))
        } catch {
            throw VaultError(.corrupt, "the key record of key '\(key)' on the token (data object labelled '\(key)', application '\(application)') does not parse; restore it from the HSM's backup or delete it (the versions stay, with day-precise dates)")
        }
    }
}

/// Version ids on the token: `CKA_ID` is 16 bytes, the creation time in milliseconds since 1970
/// (8 bytes, big-endian) then 8 random bytes, so ids sort by creation; the version id is their
/// lowercase hex (what `pkcs11-tool --list-objects` shows as `ID:`).
enum VersionID {
    static func make(at date: Date) -> [UInt8] {
        let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000).rounded(.down))
        var bytes = withUnsafeBytes(of: milliseconds.bigEndian) { Array($0) }
        bytes += SecretBytes.random(count: 8).withUnsafeBytes { Array($0) }
        return bytes
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// The bytes of a version id, nil when it is not even-length hex of 1–64 bytes.
    static func bytes(_ id: String) -> [UInt8]? {
        let utf8 = Array(id.utf8)
        guard !utf8.isEmpty, utf8.count % 2 == 0, utf8.count <= 128 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: utf8.count, by: 2) {
            guard let byte = UInt8(String(decoding: utf8[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// The creation time in an id made by ``make(at:)``.
    static func created(_ bytes: [UInt8]) -> Date? {
        guard bytes.count == 16 else { return nil }
        let milliseconds = bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}
