import Foundation

/// RFC 3339 times (`2026-12-05T07:51:29Z`, `2026-12-05T07:51:29.855Z`, `2026-12-05T08:51:29+01:00`)
/// read without Foundation's date formatters.
///
/// Text from a client (a query parameter, a JSON body, a log record) goes through this parser, not
/// `ISO8601DateFormatter`: ICU's formatter, under it, dies on an arithmetic trap (SIGFPE) for a
/// fraction of many digits (`…:29.855555555555555555555Z`, found by the vault-log fuzz target,
/// docs/testing/fuzzing.md), which would let one request end the vault service.
///
/// Accepted: `YYYY-MM-DDTHH:MM:SS`, an optional fraction of 1–9 digits, then `Z` or `±HH:MM`
/// (`t`/`z` in lower case too, as RFC 3339 §5.6 allows); a real calendar date, hours 0–23, minutes
/// 0–59, seconds 0–60 (a leap second counts as the next second's start). Anything else is nil.
public enum RFC3339 {
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.count <= 35 else { return nil }
        var index = 0
        func digits(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + count] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            index += count
            return value
        }
        func expect(_ allowed: UInt8...) -> Bool {
            guard index < bytes.count, allowed.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = digits(4), expect(0x2D), let month = digits(2), expect(0x2D), let day = digits(2),
              expect(0x54, 0x74), let hour = digits(2), expect(0x3A), let minute = digits(2), expect(0x3A),
              let second = digits(2)
        else { return nil }
        guard (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day),
              hour <= 23, minute <= 59, second <= 60
        else { return nil }
        var nanoseconds = 0
        if index < bytes.count, bytes[index] == 0x2E {
            index += 1
            var count = 0
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) {
                count += 1
                guard count <= 9 else { return nil }
                nanoseconds = nanoseconds * 10 + Int(bytes[index] - 0x30)
                index += 1
            }
            guard count > 0 else { return nil }
            for _ in count..<9 { nanoseconds *= 10 }
        }
        var offset = 0
        if expect(0x5A, 0x7A) {
            offset = 0
        } else {
            guard index < bytes.count, bytes[index] == 0x2B || bytes[index] == 0x2D else { return nil }
            let sign = bytes[index] == 0x2D ? -1 : 1
            index += 1
            guard let offsetHours = digits(2), expect(0x3A), let offsetMinutes = digits(2), offsetHours <= 23, offsetMinutes <= 59 else { return nil }
            offset = sign * (offsetHours * 3600 + offsetMinutes * 60)
        }
        guard index == bytes.count else { return nil }
        let seconds = daysFromCivil(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: TimeInterval(seconds) + TimeInterval(nanoseconds) / 1_000_000_000)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

extension RFC3339 {
    /// The JSON date strategy of every document that stores times as RFC 3339 text (the state
    /// files, the probe status, the security-log anchor): ``parse(_:)``, never Foundation's
    /// `.iso8601` strategy. A time it refuses is a `DecodingError.dataCorrupted` naming the field's
    /// path and the accepted form (the text itself is not repeated: it may be anything).
    public static let dateDecodingStrategy: JSONDecoder.DateDecodingStrategy = .custom { decoder in
        let container = try decoder.singleValueContainer()
        guard let date = parse(try container.decode(String.self)) else {
            let field = decoder.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(field.isEmpty ? "the time" : field) is not an RFC 3339 time (\(acceptedForm))")
        }
        return date
    }

    /// The accepted form, for messages that refuse a time.
    public static let acceptedForm = "YYYY-MM-DDTHH:MM:SS, a fraction of 1-9 digits optional, then Z or ±HH:MM, e.g. 2025-01-31T12:00:00Z"
}
