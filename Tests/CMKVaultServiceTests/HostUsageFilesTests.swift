@testable import CMKVaultService
import Foundation
import Logging
import Synchronization
import Testing

/// HostUsageFiles on real files: one JSON file per host, replaced atomically at 0600 in a 0700
/// directory; a corrupt or foreign file is skipped with one journal warning, never an error.
@Suite struct HostUsageFilesTests {
    /// Journal lines a test can read.
    final class Lines: Sendable {
        let lines = Mutex<[(Logger.Level, String, Logger.Metadata)]>([])
        var all: [(Logger.Level, String, Logger.Metadata)] { lines.withLock { $0 } }

        struct Handler: LogHandler {
            let sink: Lines
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
                sink.lines.withLock { $0.append((level, message.description, metadata ?? [:])) }
            }
        }

        var logger: Logger { Logger(label: "test") { _ in Handler(sink: self) } }
    }

    static func temporaryState() throws -> String {
        let root = NSTemporaryDirectory() + "cmk-usage-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return root
    }

    static func report(_ host: String, _ versions: [(String, Int, Int)], received: Date = Date(), interval: Double = 900) -> HostUsageReport {
        HostUsageReport(host: host, key: "data-at-rest-rsa2048", syncID: UUID().uuidString, finished: received, passInterval: interval,
                        accounts: versions.map(\.1).reduce(0, +), versions: versions.map { .init(version: $0.0, accounts: $0.1, deks: $0.2) },
                        received: received)
    }

    static func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test("a host's report replaces its previous one atomically: one 0600 file per host in a 0700 directory, no temp file left, totals over hosts")
    func storeReplaces() throws {
        let state = try Self.temporaryState()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let lines = Lines()
        let book = HostUsageFiles(stateDirectory: state, logger: lines.logger)
        #expect(try book.reports().isEmpty, "no directory yet: no reports, no error")
        try book.store(Self.report("host-1.example", [("v1", 5, 7)]))
        try book.store(Self.report("host-2.example", [("v1", 2, 2), ("v2", 3, 3)]))
        try book.store(Self.report("host-1.example", [("v2", 5, 7)]))

        let files = try FileManager.default.contentsOfDirectory(atPath: state + "/usage").sorted()
        #expect(files == ["host-1.example.json", "host-2.example.json"])
        #expect(try Self.mode(state + "/usage") == 0o700)
        for file in files { #expect(try Self.mode(state + "/usage/" + file) == 0o600, "\(file)") }
        let reports = try book.reports()
        #expect(reports.map(\.host) == ["host-1.example", "host-2.example"])
        #expect(reports[0].versions == [.init(version: "v2", accounts: 5, deks: 7)], "the second report replaced the first")

        let usage = try book.usage(of: "Data-At-Rest-RSA2048", at: Date())
        #expect(usage.map(\.version) == ["v1", "v2"])
        #expect(usage[0].accounts == 2 && usage[0].hosts == ["host-2.example"])
        #expect(usage[1].accounts == 8 && usage[1].deks == 10 && usage[1].hosts == ["host-1.example", "host-2.example"])
        #expect(lines.all.isEmpty)
    }

    @Test("a report older than two of its host's intervals is stale: still counted, named apart")
    func staleness() throws {
        let state = try Self.temporaryState()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let book = HostUsageFiles(stateDirectory: state, logger: Lines().logger)
        let now = Date()
        try book.store(Self.report("host-1.example", [("v1", 1, 1)], received: now.addingTimeInterval(-121), interval: 60))
        try book.store(Self.report("host-2.example", [("v1", 1, 1)], received: now.addingTimeInterval(-119), interval: 60))
        let usage = try book.usage(of: "data-at-rest-rsa2048", at: now)
        #expect(usage.first?.accounts == 2)
        #expect(usage.first?.hosts == ["host-2.example", "host-1.example"], "fresh hosts first")
        #expect(usage.first?.staleHosts == ["host-1.example"])
    }

    @Test("corrupt, foreign, mis-named, open and linked files are skipped with one warning each; the good report still reads")
    func corruptSkipped() throws {
        let state = try Self.temporaryState()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let lines = Lines()
        let book = HostUsageFiles(stateDirectory: state, logger: lines.logger)
        try book.store(Self.report("host-1.example", [("v1", 5, 7)]))
        let directory = state + "/usage"
        func write(_ name: String, _ data: Data, mode: Int = 0o600) {
            _ = FileManager.default.createFile(atPath: directory + "/" + name, contents: data, attributes: [.posixPermissions: mode])
        }
        write("corrupt.example.json", Data("{\"host\": \"corrupt.example\", \"key\": ".utf8))
        write("foreign.example.json", Data("{\"hello\": \"world\"}".utf8))
        // A copy of host-1's report under another host's name: not that host's report.
        write("claimed.example.json", try Data(contentsOf: URL(fileURLWithPath: directory + "/host-1.example.json")))
        write("open.example.json", try HostUsageFiles.encoder.encode(Self.report("open.example", [("v1", 1, 1)])), mode: 0o644)
        try FileManager.default.createSymbolicLink(atPath: directory + "/link.example.json", withDestinationPath: directory + "/host-1.example.json")
        write(".host-1.example.json.0011223344556677.tmp", Data("partial".utf8))

        for _ in 0..<2 {
            let reports = try book.reports()
            #expect(reports.map(\.host) == ["host-1.example"])
        }
        let skipped = lines.all.filter { $0.2["message_id"] == .string(VaultMessageID.usageReportSkipped) }
        #expect(skipped.allSatisfy { $0.0 == .warning })
        let files = Set(skipped.compactMap { line -> String? in
            guard case .string(let path)? = line.2["cmk_file"] else { return nil }
            return (path as NSString).lastPathComponent
        })
        #expect(files == ["corrupt.example.json", "foreign.example.json", "claimed.example.json", "open.example.json", "link.example.json"],
                "\(skipped.map { "\($0.2)" })")
        #expect(skipped.count == 5, "one warning per bad file, not one per read")
        #expect(try book.usage(of: "data-at-rest-rsa2048", at: Date()).first?.accounts == 5)
    }

    @Test("a host name that is not a DNS name is never a file name; a usage directory open to others is refused")
    func unsafeNames() throws {
        let state = try Self.temporaryState()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let book = HostUsageFiles(stateDirectory: state, logger: Lines().logger)
        #expect(throws: HostUsageFiles.StoreError.self) { try book.store(Self.report("../escape", [("v1", 1, 1)])) }
        #expect(!FileManager.default.fileExists(atPath: state + "/escape.json"))
        try FileManager.default.createDirectory(atPath: state + "/usage", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
        #expect(throws: HostUsageFiles.StoreError.self) { try book.store(Self.report("host-1.example", [("v1", 1, 1)])) }
    }
}

/// The keys API's guard on its own: which PATCH bodies take a version out of use, what the record
/// and the event say, over the in-memory keys API and real usage files.
@Suite struct InUseGuardTests {
    @Test("enabled:false or exp <= now on a version hosts use is disabled-in-use with hosts and counts, and raises KeyVersionDisabledInUse; other updates and unused versions are not")
    func findings() throws {
        let state = try HostUsageFilesTests.temporaryState()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let fixture = RotationPolicyTests.Fixture()
        let created = fixture.send("POST", "/keys/Data-Key/create", #"{"kty":"RSA"}"#)
        let current = try #require(((created.body["key"] as? [String: Any])?["kid"] as? String).map { URL(string: $0)!.lastPathComponent })
        let book = HostUsageFiles(stateDirectory: state, logger: HostUsageFilesTests.Lines().logger)
        func report(_ host: String, _ versions: [(String, Int, Int)]) -> HostUsageReport {
            var report = HostUsageFilesTests.report(host, versions)
            report.key = "data-key"
            return report
        }
        try book.store(report("host-1.example", [(current, 3, 4), ("old", 0, 0)]))
        try book.store(report("host-2.example", [(current, 2, 2)]))
        let inUse = InUseGuard(book: book, api: fixture.api, logger: HostUsageFilesTests.Lines().logger)
        let now = Date()
        func check(_ path: String, _ body: Any) -> InUseGuard.Finding? {
            inUse.check(segments: path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init),
                        body: try! JSONSerialization.data(withJSONObject: body), now: now)
        }
        let disabled = try #require(check("/keys/Data-Key/\(current)", ["attributes": ["enabled": false]]))
        #expect(disabled.change == "disabled" && disabled.version == current && disabled.usage.accounts == 5 && disabled.usage.deks == 6)
        #expect(disabled.hostAccounts == ["host-1.example=3", "host-2.example=2"])
        #expect(check("/keys/Data-Key/\(current)", ["attributes": ["exp": Int(now.timeIntervalSince1970)]])?.change == "expired")
        #expect(check("/keys/Data-Key/", ["attributes": ["enabled": false]])?.version == current, "no version in the path: the current one")
        #expect(check("/keys/Data-Key/\(current)", ["attributes": ["exp": Int(now.timeIntervalSince1970) + 3600]]) == nil, "an expiry ahead")
        #expect(check("/keys/Data-Key/\(current)", ["attributes": ["enabled": true]]) == nil)
        #expect(check("/keys/Data-Key/\(current)", ["tags": ["a": "b"]]) == nil)
        #expect(check("/keys/Data-Key/old", ["attributes": ["enabled": false]]) == nil, "a version with zero counts is not in use")
        #expect(check("/keys/Other-Key/\(current)", ["attributes": ["enabled": false]]) == nil, "another key's version")

        let recorded = ServiceEvent(operation: "key-updated", actor: "spn", role: "service-principal", address: "192.0.2.1", details: ["key": "Data-Key"])
        let event = inUse.event(recorded, disabled)
        #expect(event.operation == "disabled-in-use")
        #expect(event.details["hosts"] == "host-1.example,host-2.example" && event.details["accounts"] == "5" && event.details["deks"] == "6")
        #expect(event.details["hostAccounts"] == "host-1.example=3,host-2.example=2" && event.details["change"] == "disabled")
        inUse.done(disabled, principal: .init(role: .servicePrincipal, clientID: "spn", credentialID: "c"), responseBody: Data("{}".utf8),
                   keyEvents: fixture.keyEvents)
        #expect(fixture.keyEvents.kinds == [.versionDisabledInUse])
        #expect(fixture.keyEvents.events.withLock { $0.first?.version } == current)
    }
}
