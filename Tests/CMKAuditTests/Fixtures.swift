import CMKAudit
import CMKCore
import Foundation
import Glibc
import Synchronization

/// A private temporary directory removed when the test ends.
struct TemporaryDirectory: ~Copyable {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/cmk-audit-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    var logPath: String { path + "/security.log" }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A clock that returns a set time, advanced by hand.
final class ManualClock: WallClock {
    private let current: Mutex<Date>

    init(_ start: Date = Date(timeIntervalSince1970: 1_735_787_045.678)) { current = Mutex(start) }

    func now() -> Date { current.withLock { $0 } }

    func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// The log file split into lines (without newlines); a trailing unterminated part is the last element.
func lines(_ path: String) throws -> [String] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    var parts = text.components(separatedBy: "\n")
    if parts.last == "" { parts.removeLast() }
    return parts
}

/// Writes lines back, each followed by a newline.
func write(lines: [String], to path: String) throws {
    try Data(lines.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: path))
}

/// Permission bits of a path.
func mode(_ path: String) -> mode_t? {
    var info = stat()
    guard fstatat(AT_FDCWD, path, &info, 0) == 0 else { return nil }
    return info.st_mode & 0o7777
}

/// Appends `count` records for account `acct-<i>`.
@discardableResult
func fill(_ log: SecurityLog, count: Int, clock: ManualClock? = nil) throws -> [SecurityRecord] {
    try (1...count).map { index in
        clock?.advance(by: 1)
        return try log.append(SecurityLogEntry(event: .rebind, account: "acct-\(index)", key: "data-at-rest-rsa2048", version: "v\(index + 1)", previousVersion: "v\(index)", details: ["objects": String(index)]))
    }
}

/// Runs `python3 -c script args…` and returns its standard output; throws if it fails.
func runPython(_ script: String, _ arguments: [String]) throws -> String {
    let process = Process()
    let output = Pipe()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard process.terminationStatus == 0 else { throw PythonFailed(output: text) }
    return text
}

struct PythonFailed: Error { let output: String }

/// An independent implementation of docs/security-log.md: appends `n` records as
/// `user:<who>` under the same flock, so it interleaves with Swift writers.
let pythonAppender = #"""
import datetime, fcntl, hashlib, json, os, sys
path, n, who = sys.argv[1], int(sys.argv[2]), sys.argv[3]
canon = lambda o: json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
for i in range(n):
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    size = os.fstat(fd).st_size
    seq, prev = 1, "0" * 64
    if size:
        tail = os.pread(fd, min(size, 65536), max(0, size - 65536))
        last = json.loads(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1])
        seq = last["seq"] + 1
        del last["hash"]
        prev = hashlib.sha256(canon(last)).hexdigest()
    now = datetime.datetime.now(datetime.timezone.utc)
    record = {"seq": seq, "time": now.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (now.microsecond // 1000),
              "event": "operator-action", "actor": "user:" + who, "details": {"i": str(i)}, "prev": prev}
    record["hash"] = hashlib.sha256(canon(record)).hexdigest()
    os.write(fd, canon(record) + b"\n")
    os.fsync(fd)
    os.close(fd)
print("appended", n)
"""#

/// An independent verifier following docs/security-log.md; prints the record count.
let pythonVerifier = #"""
import hashlib, json, sys
canon = lambda o: json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
prev, seq = "0" * 64, 0
for number, line in enumerate(open(sys.argv[1], "rb").read().split(b"\n")[:-1], 1):
    record = json.loads(line)
    assert canon(record) == line, "line %d not canonical" % number
    stored = record.pop("hash")
    assert hashlib.sha256(canon(record)).hexdigest() == stored, "line %d hash" % number
    assert record["seq"] == seq + 1, "line %d seq" % number
    assert record["prev"] == prev, "line %d prev" % number
    prev, seq = stored, record["seq"]
print(seq)
"""#
