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
    /// The years 1 to 9999: a record holding an instant outside does not parse, and no date is written outside.
    static let millisecondRange: ClosedRange<Int64> = -62_135_596_800_000...253_402_300_799_999

    /// The date's whole milliseconds, rounded down in the Date's own terms: the largest count whose
    /// ``date(milliseconds:)`` is not later than `date`, so a count read back is written back unchanged
    /// (a Date counts from 2001, so `ms / 1000` through it and `* 1000` again can land just below `ms`;
    /// flooring that lost a millisecond at every rewrite, found by the pkcs11-record fuzz target).
    /// Clamped to ``millisecondRange``: a date beyond (an id made by other tools read as a creation
    /// time) no longer traps in the conversion to Int64.
    static func milliseconds(_ date: Date) -> Int64 {
        let scaled = date.timeIntervalSince1970 * 1000
        guard !scaled.isNaN else { return 0 }
        var count = Int64(min(max(scaled, Double(millisecondRange.lowerBound)), Double(millisecondRange.upperBound)).rounded())
        if self.date(milliseconds: count) > date, count > millisecondRange.lowerBound { count -= 1 }
        return count
    }

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
            let container = try decoder.singleValueContainer()
            let milliseconds = try container.decode(Int64.self)
            guard millisecondRange.contains(milliseconds) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "an instant outside the years 1 to 9999")
            }
            return Self.date(milliseconds: milliseconds)
        }
        do {
            return try decoder.decode(KeyRecord.self, from: Data(bytes))
        } catch {
            // The field, never its value.
            let field = (error as? DecodingError)?.place ?? "not JSON"
            throw VaultError(.corrupt, "the key record of key '\(key)' on the token (data object labelled '\(key)', application '\(application)') does not parse (\(field)); restore it from the HSM's backup or delete it (the versions stay, with day-precise dates)")
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

    /// The bytes of a version id, nil when it is not even-length hex of 1–64 bytes. Hex digits only:
    /// `UInt8(_:radix:)` also took a sign, so `00+001a…` named the CKA_ID of `000001a…` (found by the
    /// pkcs11-record fuzz target).
    static func bytes(_ id: String) -> [UInt8]? {
        let utf8 = Array(id.utf8)
        guard !utf8.isEmpty, utf8.count % 2 == 0, utf8.count <= 128 else { return nil }
        func nibble(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: utf8.count, by: 2) {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    /// The creation time in an id made by ``make(at:)``.
    /// Nil for an id that cannot be ours: not 16 bytes, or a time after the year 9999.
    static func created(_ bytes: [UInt8]) -> Date? {
        guard bytes.count == 16 else { return nil }
        let milliseconds = bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard milliseconds <= UInt64(KeyRecord.millisecondRange.upperBound) else { return nil }
        return KeyRecord.date(milliseconds: Int64(milliseconds))
    }
}
