@testable import CMKAudit
import CMKCore
@testable import CMKCtl
import CMKHost
import CMKSyncer
import CMKTesting
import Foundation
import Testing

/// Every reader of times in cmkctl's input and the state files it reads goes through CMKCore's
/// ``RFC3339`` (issue 20; not `ISO8601DateFormatter` nor the `.iso8601` JSON strategy, whose
/// formatter lets an impossible date roll over and, in ICU, traps on a long fraction): the TIME
/// arguments (`--since`, `--at`), the state files (`status.json`, `daemon.json`), the probe status
/// and the security-log anchor. Each refuses every malformed time of ``MalformedTimes`` clearly and
/// reads a well-formed one as ``RFC3339/parse(_:)`` does.
@Suite struct TimeInputTests {
    static let wellFormed = ["2026-12-05T07:51:29Z", "2026-12-05T07:51:29.855Z", "2026-12-05T08:51:29+01:00"]

    /// A fresh directory; removed by the caller.
    static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "cmk-time-input-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func write(_ object: [String: Any], to path: String) throws {
        let data = try JSONSerialization.data(withJSONObject: object)
        #expect(FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o644]))
    }

    /// A probe status written by its own code, then its `lastGood` replaced by `text`.
    static func writeProbeStatus(lastGood text: String, in directory: String) throws {
        var status = ProbeStatus(pid: 1, intervalSeconds: 30)
        status.lastGood = Date(timeIntervalSince1970: 1_796_400_000)
        try status.write(stateDirectory: directory)
        let path = ProbeStatus.path(stateDirectory: directory)
        let parsed = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        guard var object = parsed as? [String: Any] else { throw CtlError("\(path) is not a JSON object") }
        #expect(object["lastGood"] is String)
        object["lastGood"] = text
        try write(object, to: path)
    }

    @Test("cmkctl's TIME arguments: a malformed time exits 2 naming the option and the accepted form", arguments: MalformedTimes.rfc3339)
    func timeArgumentRefuses(text: String) throws {
        guard text != "now" else { return }
        let error = try #require(throws: CtlError.self) { try TimeArgument.parse(text, option: "--since") }
        #expect(error.exitCode == 2)
        #expect(error.message.hasPrefix("--since: '") && error.message.contains("is not a time: use RFC 3339 (YYYY-MM-DDTHH:MM:SS"), "\(error.message)")
    }

    @Test("daemon.json and status.json: a malformed time is a corrupt state file naming the file and the field", arguments: MalformedTimes.rfc3339)
    func stateFileRefuses(text: String) throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = StateStore(directory: directory)
        try Self.write(["pid": 1, "started": text, "configuration": "/etc/cmk-syncer/cmk-syncer.yaml", "version": "1"], to: store.daemonPath)
        let error = try #require(throws: StorageError.self) { try store.readDaemonInfo() }
        #expect(error.code == .corrupt)
        #expect("\(error)".contains("daemon.json is not a valid state file") && "\(error)".contains("started is not an RFC 3339 time"), "\(error)")
    }

    @Test("the probe status with a malformed time is not read (the next probe rewrites it)", arguments: MalformedTimes.rfc3339)
    func probeStatusRefuses(text: String) throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.writeProbeStatus(lastGood: text, in: directory)
        #expect(ProbeStatus.read(stateDirectory: directory) == nil)
    }

    @Test("the security-log anchor with a malformed time is corrupt, naming the anchor", arguments: MalformedTimes.rfc3339)
    func anchorRefuses(text: String) throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = directory + "/security.log"
        try Self.write(["created": text, "firstHash": String(repeating: "0", count: 64)], to: SecurityLogAnchor.path(for: log))
        let error = try #require(throws: AuditError.self) { try SecurityLogAnchor.read(for: log) }
        #expect(error.code == .corrupt && "\(error)".contains("security-log anchor '\(log).anchor' is not valid"), "\(error)")
    }

    @Test("every entry point reads a well-formed time as RFC3339.parse does", arguments: wellFormed)
    func wellFormedTimesRead(text: String) throws {
        let expected = try #require(CMKCore.RFC3339.parse(text))
        #expect(try TimeArgument.parse(text, option: "--at") == expected)
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = StateStore(directory: directory)
        try Self.write(["pid": 1, "started": text, "configuration": "/x.yaml", "version": "1"], to: store.daemonPath)
        #expect(try store.readDaemonInfo()?.started == expected)
        try Self.writeProbeStatus(lastGood: text, in: directory)
        #expect(ProbeStatus.read(stateDirectory: directory)?.lastGood == expected)
        let log = directory + "/security.log"
        try Self.write(["created": text, "firstHash": String(repeating: "0", count: 64)], to: SecurityLogAnchor.path(for: log))
        #expect(try SecurityLogAnchor.read(for: log)?.created == expected)
    }

    @Test("what the writers write still reads back: daemon.json and the anchor written by their own code")
    func writtenTimesReadBack() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = StateStore(directory: directory)
        let started = Date(timeIntervalSince1970: 1_796_400_000)
        try store.writeDaemonInfo(.init(pid: 7, started: started, configuration: "/x.yaml", version: "1"))
        #expect(try store.readDaemonInfo()?.started == started)
        let log = directory + "/security.log"
        try SecurityLogAnchor.create(for: log, firstHash: "ab", now: started)
        #expect(try SecurityLogAnchor.read(for: log)?.created == started)
    }
}
