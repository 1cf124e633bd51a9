import CMKAzureTestServer
import CMKDaemon
import CMKTesting
import CMKTestingHTTP
import Foundation
import Testing

/// The real `cmk-syncer` against a slow or throttling Azure vault (the test server over TLS on
/// loopback), with a systemd watchdog (`WATCHDOG_USEC`, 4 s) and a notify socket the test reads
/// (issue 24, defects 3 and 12):
/// - the heartbeat measures the loop, not the vault: `WATCHDOG=1` keeps coming and nothing says
///   the loop is stuck while a request is held past its timeout and retried, or while the pass
///   waits out `Retry-After: 100` (the snapshot's retry, or the throttle of a rebind's unwrap);
/// - SIGTERM during such a wait stops the daemon at once (exit 0) and the vault sees no further call.
/// A loop that really hangs still stops the pings: CMKSystemdTests' `stuckLoopStopsPinging`.
@Suite("The daemon's watchdog and stop with a slow Azure vault", .serialized)
struct SlowVaultDaemonTests {
    static let key = "data-at-rest-rsa2048"
    /// WatchdogSec= of these runs: the daemon pings every 2 s while its loop is healthy.
    static let watchdogMicroseconds = 4_000_000

    /// A test server with the key, a configuration for it (request timeout 2 s), and a daemon once started.
    final class World {
        let server: AzureKeyVaultTestServer
        let root: String
        let config: String
        var daemon: Process?
        var notify: NotifyListener?

        init(accounts: Int = 1, sync: String = "{interval: 1h}") async throws {
            let ca = try TestServerTests.authority.get()
            let secret = "slow-vault-secret-\(UUID().uuidString)"
            server = try await AzureKeyVaultTestServer.start(.init(clientSecret: secret), tls: ca.server)
            root = NSTemporaryDirectory() + "akv-slow-" + UUID().uuidString
            config = root + "/cmk-syncer.yaml"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let vault = AzureProviderSection(testServer: server, ca: ca, key: SlowVaultDaemonTests.key, clientSecretFile: root + "/client.secret", extra: ["timeout: 2s"])
            try vault.writeSecret(secret)
            try """
                state-directory: \(root)/state
                \(vault.yaml)
                accounts:
                \((1...accounts).map { "  - {name: files-\($0), kind: file, driver: directory, location: \(root)/state/accounts/files-\($0), create: true}" }.joined(separator: "\n"))
                sync: \(sync)
                logging: {format: text}
                """.write(toFile: config, atomically: true, encoding: .utf8)
            _ = try server.createKey(SlowVaultDaemonTests.key)
        }

        /// Starts `cmk-syncer run` with the watchdog and the notify socket.
        func start() throws {
            let socket = try NotifyListener(path: root + "/notify.sock")
            notify = socket
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try SlowVaultDaemonTests.binary("cmk-syncer"))
            process.arguments = ["run", "--config", config]
            var environment = ProcessInfo.processInfo.environment
            for name in ["CMK_SYNCER_CONFIG", "JOURNAL_STREAM", "WATCHDOG_PID", "CMK_HANG_AT", "CMK_CRASH_AT"] { environment[name] = nil }
            environment["NOTIFY_SOCKET"] = socket.path
            environment["WATCHDOG_USEC"] = "\(SlowVaultDaemonTests.watchdogMicroseconds)"
            process.environment = environment
            _ = FileManager.default.createFile(atPath: root + "/daemon.log", contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/daemon.log"))
            process.standardError = process.standardOutput
            try process.run()
            daemon = process
        }

        var log: String { (try? String(contentsOfFile: root + "/daemon.log", encoding: .utf8)) ?? "" }

        /// Requests to the keys API so far (not the token endpoint).
        var vaultRequests: [RecordedRequest] { server.requests.filter { $0.endpoint == .vault } }

        /// SIGTERM; returns the exit status and how long the daemon took, or nil status after 30 s.
        func terminate() async -> (status: Int32?, took: Duration) {
            guard let daemon else { return (nil, .zero) }
            let start = ContinuousClock.now
            kill(daemon.processIdentifier, SIGTERM)
            while daemon.isRunning, ContinuousClock.now - start < .seconds(30) { try? await Task.sleep(for: .milliseconds(20)) }
            let took = ContinuousClock.now - start
            guard !daemon.isRunning else { return (nil, took) }
            return (daemon.terminationStatus, took)
        }

        func close() async {
            if let daemon, daemon.isRunning {
                kill(daemon.processIdentifier, SIGKILL)
                daemon.waitUntilExit()
            }
            try? await server.shutdown()
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    /// The built executable (`CMK_TEST_BIN_DIRECTORY` runs another build's, to show a test fails before its fix).
    static func binary(_ name: String) throws -> String {
        let path = ReaderThrottleCLITests.binDirectory + "/" + name
        try #require(FileManager.default.isExecutableFile(atPath: path), "\(path) is missing: swift build --build-tests builds it")
        return path
    }

    /// Runs `body` with a fresh world and closes it (daemon killed if still running, server shut down) whatever happens.
    static func withWorld(accounts: Int = 1, sync: String = "{interval: 1h}", _ body: (World) async throws -> Void) async throws {
        let world = try await World(accounts: accounts, sync: sync)
        do {
            try await body(world)
        } catch {
            await world.close()
            throw error
        }
        await world.close()
    }

    /// One `cmk-syncer run --once` on the world's configuration, which must exit 0.
    static func runOnce(_ world: World) throws {
        let once = Process()
        once.executableURL = URL(fileURLWithPath: try binary("cmk-syncer"))
        once.arguments = ["run", "--once", "--config", world.config]
        once.standardOutput = FileHandle.nullDevice
        once.standardError = FileHandle.nullDevice
        try once.run()
        once.waitUntilExit()
        try #require(once.terminationStatus == 0, "first pass: exit \(once.terminationStatus)")
    }

    /// Reads the notify socket for `duration`; expects pings at least every 3 s throughout (the
    /// interval is 4 s; the daemon pings every 2 s) and no "stuck" line in the log.
    static func expectPingsContinue(_ world: World, for duration: Duration, _ what: String) throws {
        let notify = try #require(world.notify)
        let from = ContinuousClock.now
        let messages = notify.collect(for: duration)
        let pings = [from] + messages.filter { $0.text == "WATCHDOG=1" }.map(\.at) + [ContinuousClock.now]
        let widest = zip(pings.dropFirst(), pings).map { $0 - $1 }.max() ?? .zero
        #expect(widest < .seconds(3), "\(what): the widest gap without WATCHDOG=1 was \(widest) (WatchdogSec=4s); log:\n\(world.log)")
        #expect(!world.log.contains("stuck"), "\(what): the daemon called its loop stuck; log:\n\(world.log)")
        print("slow vault (\(what)): \(pings.count - 2) pings in \(duration), widest gap \(widest)")
    }

    @Test("GET /keys held past vault.azure.timeout (2 s, 3 tries, then the pass's retries): WATCHDOG=1 keeps coming; SIGTERM exits 0 at once")
    func heldRequests() async throws {
        try await Self.withWorld { world in
            world.server.inject(.latency(.seconds(20)), times: 10_000, matching: .vault("GET", path: "/keys/\(Self.key)"))
            try world.start()
            try Self.expectPingsContinue(world, for: .seconds(14), "requests held")
            #expect(!world.log.contains("Sync pass finished"), "the pass must still be waiting on the vault: \(world.log)")
            let stop = await world.terminate()
            #expect(stop.status == 0, "exit status after SIGTERM: \(String(describing: stop.status)); log:\n\(world.log)")
            #expect(stop.took < .seconds(8), "SIGTERM took \(stop.took) (one exchange is bounded by 2 s)")
            print("slow vault: SIGTERM while requests are held → exit \(stop.status.map(String.init) ?? "none") after \(stop.took)")
        }
    }

    @Test("429 with Retry-After: 100 on the snapshot: pings go on while the pass waits; SIGTERM ends the wait at once (exit 0) and the vault sees no further call")
    func throttledSnapshot() async throws {
        try await Self.withWorld { world in
            world.server.inject(.throttled(retryAfter: 100), times: 10_000, matching: .vault("GET", path: "/keys/\(Self.key)"))
            try world.start()
            try Self.expectPingsContinue(world, for: .seconds(10), "Retry-After: 100 on the snapshot")
            let before = world.vaultRequests
            #expect(!before.isEmpty && before.allSatisfy { $0.status == 429 }, "the daemon met the throttling: \(before.map { "\($0.method) \($0.path) \($0.status ?? 0)" })")
            let stop = await world.terminate()
            #expect(stop.status == 0, "exit status after SIGTERM: \(String(describing: stop.status)); log:\n\(world.log)")
            #expect(stop.took < .seconds(5), "SIGTERM during a Retry-After wait took \(stop.took) (TimeoutStopSec=60s, Retry-After 100 s)")
            let after = world.vaultRequests
            #expect(after.count == before.count, "vault calls after SIGTERM: \(after.dropFirst(before.count).map { "\($0.method) \($0.path)" })")
            print("slow vault: Retry-After 100 → SIGTERM → exit \(stop.status.map(String.init) ?? "none") after \(stop.took), \(after.count - before.count) calls after the signal")
        }
    }

    @Test("429 with Retry-After: 100 on a rebind's unwrap (the DEK throttle): pings go on; SIGTERM exits 0 at once with no further unwrap")
    func throttledUnwrap() async throws {
        try await Self.withWorld { world in
            // A first pass makes the keyring; the daemon started next has no cached DEK, so the
            // rebind after a rotation must unwrap in the vault.
            try Self.runOnce(world)
            _ = try world.server.rotateKey(Self.key)
            world.server.inject(.throttled(retryAfter: 100), times: 10_000, matching: .unwrap)
            world.server.clearRequests()
            try world.start()
            let deadline = ContinuousClock.now + .seconds(30)
            while !world.vaultRequests.contains(where: { $0.path.hasSuffix("/unwrapkey") && $0.status == 429 }), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            try #require(world.vaultRequests.contains { $0.path.hasSuffix("/unwrapkey") }, "the rebind never unwrapped; log:\n\(world.log)")
            try Self.expectPingsContinue(world, for: .seconds(8), "Retry-After: 100 on unwrap")
            let before = world.vaultRequests
            let stop = await world.terminate()
            #expect(stop.status == 0, "exit status after SIGTERM: \(String(describing: stop.status)); log:\n\(world.log)")
            #expect(stop.took < .seconds(5), "SIGTERM during the throttle's wait took \(stop.took)")
            let after = world.vaultRequests
            #expect(after.count == before.count, "vault calls after SIGTERM: \(after.dropFirst(before.count).map { "\($0.method) \($0.path)" })")
            print("slow vault: unwrap throttled → SIGTERM → exit \(stop.status.map(String.init) ?? "none") after \(stop.took), \(after.count - before.count) calls after the signal")
        }
    }

    @Test("SIGTERM in the middle of a rebind pass (6 accounts, one at a time, each unwrap held 1 s): status.json says interrupted, lists all 6 with the unreached as not-reached on the old version; usage is not recomputed and nothing is safe to disable")
    func stopMidPass() async throws {
        try await Self.withWorld(accounts: 6, sync: "{interval: 1h, concurrency: 1, backup-retention: 0s}") { world in
            try Self.runOnce(world)
            let store = StateStore(directory: world.root + "/state")
            let first = try #require(try store.readReport())
            try #require(first.state == .ok && first.inSyncCount == 6, "first pass: \(first.state) \(first.cause ?? "")")
            let old = try #require(first.targetVersion)
            _ = try world.server.rotateKey(Self.key)
            world.server.inject(.latency(.seconds(1)), times: 10_000, matching: .unwrap)
            world.server.clearRequests()
            try world.start()
            let deadline = ContinuousClock.now + .seconds(30)
            while world.vaultRequests.filter({ $0.path.hasSuffix("/unwrapkey") }).count < 2, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            try #require(world.vaultRequests.filter { $0.path.hasSuffix("/unwrapkey") }.count >= 2, "the rebinds never reached the vault; log:\n\(world.log)")
            let stop = await world.terminate()
            #expect(stop.status == 0, "exit status after SIGTERM: \(String(describing: stop.status)); log:\n\(world.log)")

            let cut = try #require(try store.readReport())
            #expect(cut.syncID != first.syncID, "the daemon wrote no report of the cut-short pass; log:\n\(world.log)")
            #expect(cut.interrupted != nil, "status.json does not say the pass was cut short: \(cut.state) \(cut.cause ?? "")")
            #expect(cut.state == .degraded, "a cut-short pass is \(cut.state)")
            #expect(cut.accounts.map(\.name).sorted() == (1...6).map { "files-\($0)" }, "every configured account is listed: \(cut.accounts.map(\.name))")
            let unreached = cut.accounts.filter { $0.outcome.code == .notReached }
            #expect(!unreached.isEmpty && cut.inSyncCount + unreached.count == 6, "in sync \(cut.inSyncCount), not reached \(unreached.map(\.name))")
            #expect(unreached.allSatisfy { $0.binding == old }, "not-reached accounts keep the binding of the pass before")
            let usage = try #require(cut.versions.first { $0.version == old })
            #expect(!usage.safeToDisable, "the old version is still used by \(unreached.count) unreached account(s)")
            #expect(usage.accounts.sorted() == (1...6).map { "files-\($0)" }, "usage of \(old) was recomputed from the cut-short pass: \(usage.accounts)")
            let log = (try? String(contentsOfFile: world.root + "/state/security.log", encoding: .utf8)) ?? ""
            #expect(!log.contains("version-safe-to-disable"), "a version was recorded safe to disable on the word of a cut-short pass")
            print("slow vault: SIGTERM mid-pass → exit \(stop.status.map(String.init) ?? "none") after \(stop.took); \(cut.inSyncCount) rebound, \(unreached.count) not reached")
        }
    }
}
