@testable import CMKVaultService
import Foundation
import Synchronization
import Testing

/// The console's guard and usage column over an in-memory usage book (the hosts' reports fed
/// in-process); the browser test runs the same guard against real hosts.
@Suite struct ConsoleGuardTests {
    final class Book: HostUsageBook {
        let kept = Mutex([String: HostUsageReport]())
        func store(_ report: HostUsageReport) throws { kept.withLock { $0[report.host] = report } }
        func reports() throws -> [HostUsageReport] { kept.withLock { Array($0.values) } }
    }

    static func report(_ host: String, _ counts: [String: Int], received: Date) -> HostUsageReport {
        HostUsageReport(host: host, key: "data-at-rest-rsa2048", syncID: "s", finished: received, passInterval: 900,
                        accounts: counts.values.reduce(0, +), versions: counts.sorted { $0.key < $1.key }.map { .init(version: $0.key, accounts: $0.value, deks: $0.value) },
                        received: received)
    }

    @Test("a version some host uses needs the typed id; one no host uses is safe; no book asks every time")
    func guardDecision() throws {
        let now = Date(), book = Book()
        try book.store(Self.report("host-1.example", ["old": 3, "new": 2], received: now))
        try book.store(Self.report("host-2.example", ["old": 2], received: now.addingTimeInterval(-3600)))
        let usages = try book.usage(of: "data-at-rest-rsa2048", at: now)
        #expect(ConsoleRoutes.needsConfirmation(version: "old", usages: usages, typed: nil))
        #expect(ConsoleRoutes.needsConfirmation(version: "old", usages: usages, typed: "ol"))
        #expect(!ConsoleRoutes.needsConfirmation(version: "old", usages: usages, typed: " old "))
        #expect(!ConsoleRoutes.needsConfirmation(version: "unused", usages: usages, typed: nil))
        #expect(ConsoleRoutes.needsConfirmation(version: "unused", usages: nil, typed: nil))
        #expect(ConsoleRoutes.usageText("old", usages).contains("in use by 5 accounts on 2 hosts"))
        #expect(ConsoleRoutes.usageText("old", usages).contains("stale report: host-2.example"))
        #expect(ConsoleRoutes.usageText("unused", usages).contains("safe to disable"))
        #expect(ConsoleRoutes.usageText("old", nil).contains("unknown"))
    }

    @Test("pages escape what they show; the CSRF comparison is exact")
    func escapingAndCSRF() {
        #expect(ConsolePage.escape("<script>\"a\"&'b'</script>") == "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;")
        #expect(ConsoleSessions.constantTimeEqual("abc", "abc"))
        #expect(!ConsoleSessions.constantTimeEqual("abc", "abd"))
        #expect(!ConsoleSessions.constantTimeEqual("abc", "abcd"))
        #expect(ConsoleRoutes.pathName("data-at-rest/../x") == "data-at-restx")
        #expect(ConsoleRoutes.parseTyped("2030-01-31T12:00") == GraphDate.parse("2030-01-31T12:00:00Z"))
        #expect(ConsoleRoutes.parseTyped("2030-01-31 12:00:05") == GraphDate.parse("2030-01-31T12:00:05Z"))
    }
}
