import CMKAzureTestServer
import CMKTesting
import CMKTestingHTTP
import Foundation
import Testing

/// `cmkctl data get` against the Azure test server while the vault throttles with
/// `Retry-After: 3600` (issue 14, defect 13): the reader gives up at once with a message that
/// says the vault is throttling and how long it asked to wait, instead of retrying for minutes.
/// The real `cmk-syncer` and `cmkctl` binaries run against the server over TLS.
@Suite("cmkctl data get against a throttling Azure vault", .serialized)
struct ReaderThrottleCLITests {
    struct Run {
        var code: Int32
        var stdout: String
        var stderr: String
    }

    /// The build products directory, where the test bundle and both executables live.
    static var binDirectory: String { BuiltExecutables.directory }

    /// Runs a built executable; a run past `timeout` is killed and recorded as an issue (a reader
    /// that waits out the vault's Retry-After would take minutes).
    static func run(_ name: String, _ arguments: [String], stdin: Data = Data(), timeout: Duration = .seconds(100)) async throws -> Run {
        let path = binDirectory + "/" + name
        try #require(FileManager.default.isExecutableFile(atPath: path), "\(path) is missing: swift build --build-tests builds it")
        let scratch = NSTemporaryDirectory() + "akv-cli-" + UUID().uuidString
        for suffix in [".in", ".out", ".err"] { _ = FileManager.default.createFile(atPath: scratch + suffix, contents: suffix == ".in" ? stdin : nil) }
        defer { for suffix in [".in", ".out", ".err"] { unlink(scratch + suffix) } }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["CMK_SYNCER_CONFIG"] = nil
        process.environment = environment
        process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: scratch + ".in"))
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + ".out"))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + ".err"))
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning {
            process.terminate()
            Issue.record("\(name) \(arguments.joined(separator: " ")) still ran after \(timeout); killed")
        }
        process.waitUntilExit()
        let read = { (suffix: String) in String(decoding: FileManager.default.contents(atPath: scratch + suffix) ?? Data(), as: UTF8.self) }
        return Run(code: process.terminationStatus, stdout: read(".out"), stderr: read(".err"))
    }

    @Test("Retry-After: 3600 on unwrap: cmkctl data get gives up at once, exit 1, saying the vault is throttling and for how long")
    func longRetryAfter() async throws {
        let ca = try TestServerTests.authority.get()
        let secret = "reader-secret-\(UUID().uuidString)"
        let server = try await AzureKeyVaultTestServer.start(.init(clientSecret: secret), tls: ca.server)
        let root = NSTemporaryDirectory() + "akv-reader-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let vault = AzureProviderSection(testServer: server, ca: ca, key: "data-at-rest-rsa2048", clientSecretFile: root + "/client.secret")
            try vault.writeSecret(secret)
            let config = root + "/cmk-syncer.yaml"
            try """
                state-directory: \(root)/state
                \(vault.yaml)
                accounts:
                  - {name: files-1, kind: file, driver: directory, location: \(root)/state/accounts/files-1, create: true}
                logging:
                  format: text
                """.write(toFile: config, atomically: true, encoding: .utf8)
            _ = try server.createKey("data-at-rest-rsa2048")

            let once = try await Self.run("cmk-syncer", ["run", "--once", "--config", config])
            #expect(once.code == 0, "first pass: exit \(once.code): \(once.stderr)")
            let put = try await Self.run("cmkctl", ["data", "put", "files-1", "invoice-1", "--config", config], stdin: Data("ledger".utf8))
            #expect(put.code == 0, "put: exit \(put.code): \(put.stderr)")

            server.clearRequests()
            server.inject(.throttled(retryAfter: 3600), times: 1000, matching: .unwrap)
            let get = try await Self.run("cmkctl", ["data", "get", "files-1", "invoice-1", "--config", config])
            #expect(get.code == 1, "exit \(get.code): \(get.stderr)")
            #expect(get.stdout.isEmpty)
            #expect(get.stderr.contains("vault.throttled"), "\(get.stderr)")
            #expect(get.stderr.contains("the vault is throttling: it asked to wait 3600 s (Retry-After)"), "\(get.stderr)")
            #expect(get.stderr.contains("cache.read-wait: 10 s") && get.stderr.contains("try again later"), "\(get.stderr)")
            #expect(!get.stderr.contains(secret))
            let unwraps = server.requests.filter { $0.path.hasSuffix("/unwrapkey") && $0.hadAuthorization }
            #expect(unwraps.count == 1 && unwraps.allSatisfy { $0.status == 429 }, "one refused unwrap, no retries: \(unwraps.map { "\($0.status ?? 0)" })")
        } catch {
            try? await server.shutdown()
            throw error
        }
        try? await server.shutdown()
    }
}
