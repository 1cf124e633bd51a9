import Foundation
import Testing

/// The real `cmk-syncer` under a descriptor limit (issue 24, defect 10), started through
/// `prlimit --nofile=SOFT:HARD` as a wrapper: 250 SQLite accounts with
/// `CMK_SQLITE_OPEN_DATABASES=300` used to run out of descriptors in the first pass, then every
/// pass was `degraded 0/250` blaming the vault ("Too many open files") with all-zero sync ids.
@Suite("cmk-syncer under a descriptor limit", .serialized)
struct DescriptorLimitDaemonTests {
    static let accountCount = 250

    private func makeSetup() throws -> EmbeddedSetup {
        try EmbeddedSetup(accounts: (0..<Self.accountCount).map { ("sql-\($0)", "sql") })
    }

    /// Starts the daemon (or cmkctl) as `prlimit --nofile=LIMIT <binary> ARGS`; prlimit execs it,
    /// so the pid is the program's own.
    private func start(_ program: String, limit: String, _ arguments: [String], log: String) throws -> Process {
        try startWrapped("/usr/bin/prlimit", ["--nofile=\(limit)", try DaemonProcess.binary(program)] + arguments, log: log,
                         environment: ["CMK_SQLITE_OPEN_DATABASES": "300"])
    }

    private func finish(_ process: Process, timeout: Duration = .seconds(120)) async throws -> Int32 {
        try await eventually("process \(process.processIdentifier) exits", timeout: timeout) { !process.isRunning }
        return process.terminationStatus
    }

    private func stop(_ process: Process) async {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        if (try? await finish(process, timeout: .seconds(60))) == nil {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    private func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// Two passes (the second after a rotation) with the soft limit at 1024 and the hard one at
    /// 20000: the daemon raises its soft limit, both passes bind all 250 accounts, nothing runs
    /// out of descriptors, the vault is never blamed, and the sync ids are random.
    @Test("a soft limit of 1024 is raised to the hard one; two passes bind all 250 accounts")
    func raisesTheSoftLimit() async throws {
        let setup = try makeSetup()
        let log = setup.root + "/daemon.log"
        let daemon = try start("cmk-syncer", limit: "1024:20000", ["run", "--config", setup.configPath], log: log)
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL); daemon.waitUntilExit() } }
        try await eventually("the first pass reports", timeout: .seconds(180)) { try setup.report()?["syncID"] != nil }
        let first = try #require(try setup.report())
        let limits = text("/proc/\(daemon.processIdentifier)/limits")
        let nofile = limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }?.split(separator: " ").dropFirst(3).prefix(2)
        #expect(nofile.map(Array.init) == ["20000", "20000"], "soft limit not raised: \(limits)")

        let rotate = try start("cmkctl", limit: "1024:1024", ["keys", "rotate", "--config", setup.configPath], log: setup.root + "/rotate.log")
        #expect(try await finish(rotate) == 0, "keys rotate: \(text(setup.root + "/rotate.log"))")
        kill(daemon.processIdentifier, SIGUSR1)
        let firstID = try #require(first["syncID"] as? String)
        try await eventually("the second pass reports", timeout: .seconds(180)) {
            guard let id = try setup.report()?["syncID"] as? String else { return false }
            return id != firstID
        }
        let second = try #require(try setup.report())
        await stop(daemon)
        let output = text(log)
        for report in [first, second] {
            #expect(report["state"] as? String == "ok", "pass \(report["syncID"] ?? "?"): \(report["cause"] ?? "")")
            let accounts = report["accounts"] as? [[String: Any]] ?? []
            #expect(accounts.count == Self.accountCount)
            #expect(accounts.allSatisfy { ($0["outcome"] as? [String: Any])?["code"] as? String != "failed" })
            let id = report["syncID"] as? String ?? ""
            #expect(id.count == 32 && id != String(repeating: "0", count: 32), "sync id \(id)")
        }
        #expect(second["currentVersion"] as? String != first["currentVersion"] as? String)
        #expect(!output.contains("Too many open files"), "the daemon ran out of descriptors")
        #expect(!output.contains("could not be reached"))
    }

    /// Hard limit 1024: the soft one cannot go higher, so 300 open databases would need more
    /// than there are; the daemon keeps fewer open with a catalogued warning, and binds all.
    @Test("a hard limit of 1024 keeps fewer databases open, with a warning, and every account binds")
    func lowersTheOpenDatabases() async throws {
        let setup = try makeSetup()
        let log = setup.root + "/once.log"
        let once = try start("cmk-syncer", limit: "1024:1024", ["run", "--once", "--config", setup.configPath], log: log)
        #expect(try await finish(once, timeout: .seconds(180)) == 0, "\(text(log).suffix(2000))")
        let output = text(log)
        #expect(output.contains("keeping fewer open"))
        #expect(output.contains("7e95449d4f0f45f0a52a775561b25e97"))
        #expect(output.contains("cmk_sqlite_open_databases_used=179"))
        #expect(!output.contains("Too many open files"))
        let report = try #require(try setup.report())
        let failed = (report["accounts"] as? [[String: Any]] ?? []).filter { ($0["outcome"] as? [String: Any])?["code"] as? String != "rebound" }
        #expect(report["state"] as? String == "ok", "accounts not rebound: \(failed)")
    }

    /// 520 of 600 descriptors taken before the daemon starts (inherited, so its fitted set of
    /// open databases does not know of them), then a pass that rebinds all 250 accounts: it runs
    /// out of descriptors, lets go of its open databases and tries once more, so every account
    /// is rebound (before: 13 of 250, the rest failed with SQLite's "unable to open database file").
    @Test("out of descriptors anyway, the daemon lets go of its open databases and every account binds")
    func shedsOpenDatabases() async throws {
        let setup = try makeSetup()
        let create = try start("cmk-syncer", limit: "20000:20000", ["run", "--once", "--config", setup.configPath], log: setup.root + "/first.log")
        #expect(try await finish(create, timeout: .seconds(180)) == 0)
        let rotate = try start("cmkctl", limit: "20000:20000", ["keys", "rotate", "--config", setup.configPath], log: setup.root + "/rotate.log")
        #expect(try await finish(rotate) == 0)
        let log = setup.root + "/held.log"
        let shell = "for i in $(seq 520); do exec {fd}</dev/null; done; exec /usr/bin/prlimit --nofile=600:600 \"$@\""
        let once = try startWrapped("/bin/bash", ["-c", shell, "bash", try DaemonProcess.binary("cmk-syncer"), "run", "--once", "--config", setup.configPath],
                                    log: log, environment: ["CMK_SQLITE_OPEN_DATABASES": "300"])
        #expect(try await finish(once, timeout: .seconds(180)) == 0, "\(text(log).suffix(3000))")
        let report = try #require(try setup.report())
        #expect(report["state"] as? String == "ok", "\(report["cause"] ?? "")")
        let accounts = report["accounts"] as? [[String: Any]] ?? []
        #expect(accounts.filter { ($0["outcome"] as? [String: Any])?["code"] as? String == "rebound" }.count == Self.accountCount)
    }

    /// A limit that leaves no room for one database next to the reserve: exit 78, said clearly,
    /// before any account is touched.
    @Test("a limit of 100 descriptors refuses to start with exit 78 and says what to raise")
    func refusesATinyLimit() async throws {
        let setup = try makeSetup()
        let log = setup.root + "/once.log"
        let once = try start("cmk-syncer", limit: "100:100", ["run", "--once", "--config", setup.configPath], log: log)
        #expect(try await finish(once) == 78)
        let output = text(log)
        #expect(output.contains("open-file limit (RLIMIT_NOFILE) is 100 descriptors"))
        #expect(output.contains("LimitNOFILE="))
        #expect(!FileManager.default.fileExists(atPath: setup.state + "/accounts"))
    }
}
