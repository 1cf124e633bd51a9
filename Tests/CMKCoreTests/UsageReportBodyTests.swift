import CMKCore
import Foundation
import Testing

/// The usage report's wire body, which the daemon encodes and cmk-vault decodes: its fields and
/// values stay those the service's OpenAPI document describes, and an unknown field inside
/// `versions` is refused.
@Suite("The usage report's wire body")
struct UsageReportBodyTests {
    /// With sorted keys; the daemon's JSONEncoder writes the same fields and values in an order
    /// that changes from process to process (Foundation's default), which JSON readers ignore.
    static let json = #"{"accounts":3,"finished":"2026-12-05T07:10:00.250Z","key":"data-at-rest-rsa2048","passInterval":900.5,"syncId":"7f3c2a10","versions":[{"accounts":2,"deks":5,"version":"a1b2c3"}]}"#

    @Test("encoded with exactly the wire's fields and values; decoded back to the same value")
    func bytes() throws {
        let body = UsageReportBody(key: "data-at-rest-rsa2048", syncId: "7f3c2a10", finished: "2026-12-05T07:10:00.250Z", passInterval: 900.5,
                                   accounts: 3, versions: [.init(version: "a1b2c3", accounts: 2, deks: 5)])
        let sorted = JSONEncoder()
        sorted.outputFormatting = .sortedKeys
        #expect(String(decoding: try sorted.encode(body), as: UTF8.self) == Self.json)
        let plain = try #require(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(body)) as? NSDictionary)
        #expect(plain == (try JSONSerialization.jsonObject(with: Data(Self.json.utf8)) as? NSDictionary))
        #expect(try JSONDecoder().decode(UsageReportBody.self, from: Data(Self.json.utf8)) == body)
        #expect(UsageReportBody.fields == ["key", "syncId", "finished", "passInterval", "accounts", "versions"])
    }

    @Test("a field inside versions[] that the body does not know is refused, named with what is accepted")
    func unknownFieldInVersions() throws {
        let text = Self.json.replacingOccurrences(of: #""version":"a1b2c3"}"#, with: #""version":"a1b2c3","host":"web-1"}"#)
        #expect(text != Self.json)
        do {
            _ = try JSONDecoder().decode(UsageReportBody.self, from: Data(text.utf8))
            Issue.record("decoded a body with versions[].host")
        } catch let error as UsageReportBody.UnknownField {
            #expect(error.description == "unknown field 'versions[].host' (accepted: accounts, deks, version)")
        }
    }
}
