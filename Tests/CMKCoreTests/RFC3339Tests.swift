import CMKCore
import CMKTesting
import Foundation
import Testing

/// RFC 3339 times read without ICU (``RFC3339``): the vault-log fuzz target found that
/// `ISO8601DateFormatter` dies on an arithmetic trap (SIGFPE) for a fraction of many digits, and
/// the Security Logs API's time parameters and the Graph-style bodies were read with it.
@Suite struct RFC3339Tests {
    static func formatter(_ options: ISO8601DateFormatter.Options) -> ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = options
        return formatter
    }

    @Test("the times the service writes and clients send read as Foundation's formatter reads them", arguments: [
        "2026-12-05T07:51:29Z", "2026-12-05T07:51:29.855Z", "2026-12-05T08:51:29+01:00", "2026-12-05T01:21:29-06:30",
        "2000-02-29T23:59:59Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.5Z", "2400-02-29T12:00:00.000Z", "9999-12-31T23:59:59Z",
    ])
    func agreesWithFoundation(text: String) throws {
        let ours = try #require(RFC3339.parse(text), "\(text) refused")
        let theirs = try #require(Self.formatter([.withInternetDateTime, .withFractionalSeconds]).date(from: text)
                                  ?? Self.formatter([.withInternetDateTime]).date(from: text))
        #expect(abs(ours.timeIntervalSince(theirs)) < 0.0005, "\(text): \(ours) vs \(theirs)")
    }

    @Test("fractions of 1 to 9 digits keep their value; a leap second is the next second's start")
    func fractions() throws {
        let base = try #require(RFC3339.parse("2026-12-05T07:51:29Z")).timeIntervalSince1970
        #expect(RFC3339.parse("2026-12-05T07:51:29.5Z")?.timeIntervalSince1970 == base + 0.5)
        #expect(abs((RFC3339.parse("2026-12-05T07:51:29.123456789Z")?.timeIntervalSince1970 ?? 0) - (base + 0.123456789)) < 1e-6)
        #expect(RFC3339.parse("2016-12-31T23:59:60Z") == RFC3339.parse("2017-01-01T00:00:00Z"))
        #expect(RFC3339.parse("2026-12-05t07:51:29z") == RFC3339.parse("2026-12-05T07:51:29Z"))
    }

    @Test("anything else is nil, never a crash", arguments: MalformedTimes.rfc3339)
    func refusals(text: String) {
        #expect(RFC3339.parse(text) == nil, "\(text) accepted")
    }
}
