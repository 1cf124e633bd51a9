import CMKAudit
import CMKCore
import Foundation
import Testing

@Suite("Security log: canonical encoding and entries")
struct SecurityRecordEncodingTests {
    /// Computed independently from docs/security-log.md with Python:
    /// `hashlib.sha256(json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())`.
    static let expectedCanonical = #"{"account":"file-1","actor":"user:alice","details":{"note":"é \"q\"\n\t\u0001/","objects":"3"},"event":"rebind","key":"data-at-rest-rsa2048","prev":"0000000000000000000000000000000000000000000000000000000000000000","previousVersion":"v1","seq":1,"time":"2025-01-02T03:04:05.678Z","version":"v2"}"#
    static let expectedHash = "2ef9646b93d2be8b7ceb830fb0dd4b1c6d0472f529376231349aa7b7aece5ac9"

    /// The stored line: the same object with `hash` added (sorted between `event` and `key`).
    static let expectedLine = #"{"account":"file-1","actor":"user:alice","details":{"note":"é \"q\"\n\t\u0001/","objects":"3"},"event":"rebind","hash":"2ef9646b93d2be8b7ceb830fb0dd4b1c6d0472f529376231349aa7b7aece5ac9","key":"data-at-rest-rsa2048","prev":"0000000000000000000000000000000000000000000000000000000000000000","previousVersion":"v1","seq":1,"time":"2025-01-02T03:04:05.678Z","version":"v2"}"#

    static let entry = SecurityLogEntry(
        event: .rebind, account: "file-1", key: "data-at-rest-rsa2048", version: "v2", previousVersion: "v1",
        actor: .user("alice"), details: ["objects": "3", "note": "é \"q\"\n\t\u{01}/"]
    )

    @Test("the canonical encoding and hash of a fixed record match the documented algorithm")
    func fixedVector() throws {
        let record = SecurityRecord(seq: 1, time: Date(timeIntervalSince1970: 1_735_787_045.678), entry: Self.entry, prev: SecurityRecord.genesisHash)
        #expect(String(decoding: record.canonicalBytes(includingHash: false), as: UTF8.self) == Self.expectedCanonical)
        #expect(record.hash == Self.expectedHash)
        #expect(record.computedHash == Self.expectedHash)
    }

    @Test("append writes exactly the canonical line with the hash")
    func storedLine() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath, clock: ManualClock(Date(timeIntervalSince1970: 1_735_787_045.678_9)))
        let record = try log.append(Self.entry)
        #expect(record.hash == Self.expectedHash)
        #expect(try String(contentsOfFile: dir.logPath, encoding: .utf8) == Self.expectedLine + "\n")
        #expect(try log.records() == [record])
    }

    @Test("times are stored in UTC to the millisecond, truncated")
    func timeFormat() throws {
        let record = SecurityRecord(seq: 1, time: Date(timeIntervalSince1970: 0.0019), entry: SecurityLogEntry(event: .daemonStarted), prev: SecurityRecord.genesisHash)
        #expect(String(decoding: record.canonicalBytes(includingHash: false), as: UTF8.self).contains(#""time":"1970-01-01T00:00:00.001Z""#))
        #expect(record.time == Date(timeIntervalSince1970: 0.001))
    }

    @Test("details that look like key material are refused", arguments: [
        String(repeating: "ab12", count: 16),                       // 256-bit key in hex
        "k=" + String(repeating: "Qm9n", count: 11),                // base64 run without slashes
        "aGVsbG8gd29ybGQ/dGhpcyBpcyBhIHRlc3QgMTIzNDU2Nzg5MA==",   // base64 with a slash
    ])
    func keyMaterialRefused(_ value: String) throws {
        let error = try #require(throws: AuditError.self) { try SecurityLogEntry(event: .dekMinted, details: ["dek": value]).validate() }
        #expect(error.code == .invalidEntry)
        #expect(!error.description.contains(value))
    }

    @Test("ordinary details pass", arguments: [
        "3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7",                        // a DEK id
        "/var/lib/cmk-syncer/state/accounts/file/customer-0001/x",  // a path
        "rotate --account file-1 --key data-at-rest-rsa2048",
    ])
    func ordinaryDetails(_ value: String) throws {
        try SecurityLogEntry(event: .operatorAction, details: ["value": value]).validate()
    }

    @Test("append refuses an invalid entry and writes nothing")
    func appendValidates() throws {
        let dir = try TemporaryDirectory()
        let log = SecurityLog(path: dir.logPath)
        #expect(throws: AuditError(.invalidEntry, "")) {
            try log.append(SecurityLogEntry(event: .dekMinted, details: ["dek": String(repeating: "0f", count: 32)]))
        }
        #expect(throws: AuditError(.invalidEntry, "")) {
            try log.append(SecurityLogEntry(event: .operatorAction, details: ["long": String(repeating: "a-", count: 200)]))
        }
        #expect(try log.records().isEmpty)
    }

    @Test("the local actor is the sudo user, else the real user's login name")
    func localActor() {
        #expect(SecurityLog.localActor(environment: ["SUDO_USER": "bob"]) == .user("bob"))
        guard case .user(let name) = SecurityLog.localActor(environment: [:]) else { Issue.record("expected a user"); return }
        #expect(!name.isEmpty)
        #expect(name == String(cString: getpwuid(getuid())!.pointee.pw_name))
    }

    @Test("actors round-trip through their stored form", arguments: [SecurityActor.daemon, .user("alice"), .user("a:b")])
    func actorText(_ actor: SecurityActor) {
        #expect(SecurityActor(actor.description) == actor)
    }

    @Test("unknown actor forms are rejected", arguments: ["", "user:", "root", "Daemon"])
    func badActor(_ text: String) {
        #expect(SecurityActor(text) == nil)
    }

    @Test("every event has a distinct stored name")
    func eventNames() {
        #expect(Set(SecurityEvent.allCases.map(\.rawValue)).count == SecurityEvent.allCases.count)
        #expect(SecurityEvent(rawValue: "version-disabled-in-use") == .versionDisabledInUse)
    }
}
