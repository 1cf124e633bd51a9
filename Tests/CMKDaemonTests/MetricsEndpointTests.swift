import CMKTesting
import Foundation
import Testing

/// `metrics.listen` on a real `cmk-syncer run` with the local vault (docs/metrics.md): the unix
/// socket's mode, what the endpoint answers besides `GET /metrics`, every family documented, and
/// a refused address exiting 78 before anything starts.
@Suite("The daemon's metrics endpoint", .serialized)
struct MetricsEndpointTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// curl's HTTP status for `method path` on the socket.
    static func status(_ socket: String, _ method: String, _ path: String) throws -> String {
        try PrometheusScrape.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, "--unix-socket", socket, "http://localhost\(path)"]).output
    }

    @Test("unix:/path: a 0660 socket serving GET /metrics that promtool accepts, 404 elsewhere, 405 for POST, every family in docs/metrics.md; removed on SIGTERM")
    func unixSocket() async throws {
        let setup = try EmbeddedSetup()
        let socket = setup.root + "/metrics.sock"
        try setup.writeConfig(accounts: [("files-1", "file"), ("sql-1", "sql")], extra: "metrics: {listen: 'unix:\(socket)'}")
        let daemon = try DaemonProcess(arguments: ["run", "--config", setup.configPath], logPath: setup.root + "/daemon.log")
        try await eventually("first report") { try setup.report() != nil }

        var info = stat()
        #expect(lstat(socket, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK, "no socket at \(socket); log:\n\(daemon.log)")
        #expect(info.st_mode & 0o777 == 0o660, "mode \(String(info.st_mode & 0o777, radix: 8))")
        let scrape = try PrometheusScrape.fetch(unixSocket: socket)
        try scrape.check()
        #expect(scrape.value("cmk_syncer_passes_total", ["outcome": "ok"]) == 1)
        #expect(scrape.sum("cmk_syncer_accounts") == 2)
        #expect(scrape.value("cmk_syncer_accounts", ["state": "rebound", "kind": "sql", "reason": "none"]) == 1)
        #expect((scrape.value("cmk_syncer_dek_cache_entries") ?? 0) >= 2)
        #expect((scrape.value("process_cpu_seconds_total") ?? 0) > 0)
        #expect((scrape.value("process_max_fds") ?? 0) >= 1024)
        #expect(scrape.value("cmk_syncer_pass_interval_seconds") == 600)

        #expect(try Self.status(socket, "GET", "/") == "404")
        #expect(try Self.status(socket, "GET", "/metrics/x") == "404")
        #expect(try Self.status(socket, "POST", "/metrics") == "405")
        #expect(try Self.status(socket, "GET", "/metrics?name=x") == "200")

        // Every family served is documented with its type (and nothing names an account).
        let docs = try String(contentsOfFile: Self.packageRoot + "/docs/metrics.md", encoding: .utf8)
        let families = scrape.text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ") }
        #expect(families.count >= 30)
        for family in families {
            #expect(docs.contains("| `\(family[2])` | \(family[3]) |"), "docs/metrics.md has no row for \(family[2]) (\(family[3]))")
        }
        #expect(!scrape.text.contains("files-1") && !scrape.text.contains("sql-1"), "an account name is in the exposition")

        daemon.signal(SIGTERM)
        #expect(await daemon.wait() == 0)
        #expect(lstat(socket, &info) != 0, "the socket is left behind")
    }

    @Test("a non-loopback metrics.listen exits 78 from run and check-config, naming the key and the accepted forms")
    func refusedAddress() async throws {
        let setup = try EmbeddedSetup()
        try setup.writeConfig(accounts: [("files-1", "file")], extra: "metrics: {listen: '0.0.0.0:9464'}")
        for command in ["run", "check-config"] {
            let process = try DaemonProcess(arguments: [command, "--config", setup.configPath], logPath: setup.root + "/\(command).log")
            #expect(await process.wait(timeout: .seconds(10)) == 78, "\(command)")
            #expect(process.log.contains("metrics.listen: '0.0.0.0:9464' is not a loopback address or unix socket"), "\(command): \(process.log)")
            #expect(process.log.contains("accepted: 127.0.0.1:PORT, [::1]:PORT or unix:/absolute/path"), "\(command): \(process.log)")
        }
        #expect(!FileManager.default.fileExists(atPath: setup.state + "/status.json"))
    }
}
