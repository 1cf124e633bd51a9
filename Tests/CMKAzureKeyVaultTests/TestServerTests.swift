import CMKAccounts
import CMKAzureKeyVault
import CMKAzureTestServer
import CMKCore
import CMKEnvelope
import CMKSyncer
import CMKTesting
import Foundation
import Synchronization
import Testing

/// The provider against the Azure Key Vault test server over real TLS on loopback: the
/// KeyVault conformance suite, and the syncer's story (rotation, pull, restore, throttling,
/// outage) with the request budget counted on the server's side.
@Suite("Azure provider against the test server", .serialized)
struct TestServerTests {
    /// One certificate authority for every server of the suite, so the provider's shared HTTP
    /// client (one per trust root) is reused.
    static let authority = Result(catching: { try TestCertificateAuthority.make() })

    /// Starts a server on `clock`, writes its client secret to a 0600 file and makes a provider
    /// that trusts the test CA. Short provider retries keep failing paths quick.
    static func connect(clock: ManualClock, retry: RequestRetryPolicy = .init(maxAttempts: 3, baseDelay: .milliseconds(10), maxDelay: .milliseconds(40), maximumRetryAfter: .seconds(2)))
        async throws -> (server: AzureKeyVaultTestServer, vault: AzureKeyVault, cleanup: @Sendable () async -> Void)
    {
        let ca = try authority.get()
        let secret = "story-secret-\(UUID().uuidString)"
        let server = try await AzureKeyVaultTestServer.start(.init(clientSecret: secret, clock: clock), tls: ca.server)
        let secretFile = NSTemporaryDirectory() + "akv-secret-\(UUID().uuidString)"
        try #require(FileManager.default.createFile(atPath: secretFile, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600]))
        let configuration = AzureKeyVaultConfiguration(
            vaultURL: try #require(URL(string: server.vaultURL)),
            credential: .clientSecret(tenantID: server.configuration.tenantID, clientID: server.configuration.clientID, secretFile: secretFile),
            authorityHost: try #require(URL(string: server.authorityHost)),
            caFile: ca.caCertificatePath, timeout: .seconds(20), retry: retry, keyName: "data-at-rest-rsa2048")
        let vault = try AzureKeyVault(configuration: configuration,
                                      transport: try AsyncHTTPClientTransport.shared(caFile: ca.caCertificatePath, timeout: .seconds(20)))
        return (server, vault, {
            try? await server.shutdown()
            try? FileManager.default.removeItem(atPath: secretFile)
        })
    }

    @Test("the provider passes the KeyVault conformance suite against the test server")
    func conformance() async throws {
        let cleanups = Mutex<[@Sendable () async -> Void]>([])
        let outcome: Result<[String], any Error>
        do {
            outcome = .success(try await KeyVaultConformance { clock in
                let connection = try await Self.connect(clock: clock)
                cleanups.withLock { $0.append(connection.cleanup) }
                return connection.vault
            }.run())
        } catch {
            outcome = .failure(error)
        }
        for cleanup in cleanups.withLock({ $0 }) { await cleanup() }
        let ran = try outcome.get()
        #expect(ran.count == 12)
        print("Azure provider against the test server: \(ran.count) conformance checks passed")
    }

    @Test("the syncer story: rotation, pull, restore, throttling and an outage, with one snapshot per pass")
    func story() async throws {
        // Whole seconds: Key Vault's timestamps are Unix seconds, so the outage length is exact.
        let clock = ManualClock(Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)))
        let (server, vault, cleanup) = try await Self.connect(clock: clock)
        do {
            try await runStory(server: server, vault: vault, clock: clock)
        } catch {
            await cleanup()
            throw error
        }
        await cleanup()
    }

    private func runStory(server: AzureKeyVaultTestServer, vault: AzureKeyVault, clock: ManualClock) async throws {
        let key = try KeyReference("data-at-rest-rsa2048")
        let cache = DEKCache(configuration: try .init(ttl: .seconds(3600)), clock: clock)
        let counted = CountingKeyVault(vault)
        let resolver = DEKResolver(vault: counted, cache: cache)
        let executor = RebindExecutor(resolver: resolver, clock: clock)
        let plane = DataPlane(resolver: resolver)
        let accounts = ["files-1", "sql-1", "audit-1"].map { name in
            Account(name: name, kind: .file, driver: InMemoryStorageDriver(account: name), key: key)
        }
        let delays = Mutex<[Duration]>([])
        let previous = Mutex<SyncReport?>(nil)
        func pass() async -> SyncReport {
            let pass = SyncPass(settings: .init(key: key, policy: .init(), concurrency: 2), accounts: accounts, vault: counted,
                                executor: executor, clock: clock, sleep: { delay in delays.withLock { $0.append(delay) } }, random: { 0.5 })
            let report = await pass.run(previous: previous.withLock { $0 }).report
            previous.withLock { $0 = report }
            return report
        }
        /// The vault requests that carried a token since the last call: what the pass cost.
        func vaultRequests() -> [RecordedRequest] {
            defer { server.clearRequests() }
            return server.requests.filter { $0.endpoint == .vault && $0.hadAuthorization }
        }
        let object = try ObjectName("invoice-1")

        // First pass: keyrings created, one snapshot (latest + versions), no unwrap.
        let v1 = try server.createKey(key.name)
        let first = await pass()
        #expect(first.state == .ok && first.accounts.allSatisfy { $0.binding == v1 }, "first pass: \(first.state) \(first.accounts.map(\.outcome))")
        _ = try await plane.put(accounts[0], object, Array("ledger".utf8))
        server.clearRequests()

        // Idle pass: exactly one snapshot, two GETs.
        let idle = await pass()
        let idleRequests = vaultRequests()
        #expect(idle.state == .ok && idle.inSyncCount == 3)
        #expect(idleRequests.map(\.method) == ["GET", "GET"], "idle pass sent \(idleRequests.map { "\($0.method) \($0.path)" })")
        #expect(idleRequests.allSatisfy { $0.status == 200 })

        // Rotation in Azure: every account rebinds; each rebind unwraps its DEK in the vault once.
        clock.advance(by: .seconds(60))
        let v2 = try server.rotateKey(key.name)
        let rotated = await pass()
        let rotationRequests = vaultRequests()
        #expect(rotated.state == .ok && rotated.accounts.allSatisfy { $0.binding == v2 && $0.outcome.code == .rebound })
        // One snapshot, then only unwraps (DEKs still cached from minting need none); no deleted-key lookup.
        let unwraps = rotationRequests.filter { $0.path.hasSuffix("/unwrapkey") }.count
        #expect(unwraps <= 3 && rotationRequests.count == 2 + unwraps, "rotation sent \(rotationRequests.map { "\($0.method) \($0.path)" })")
        #expect(rotationRequests.filter { $0.method == "GET" && $0.path.hasSuffix("/versions") }.count == 1)
        #expect(try await plane.get(accounts[0], object).plaintext == Array("ledger".utf8))

        // Pull: the key is soft-deleted in Azure; the 404 leads to one deleted-key lookup.
        clock.advance(by: .seconds(60))
        try server.deleteKey(key.name)
        let pulled = await pass()
        let pullRequests = vaultRequests()
        #expect(pulled.state == .keyPulled && pulled.accounts.allSatisfy(\.suspended))
        #expect(pullRequests.contains { $0.path.hasPrefix("/deletedkeys/") && $0.status == 200 })
        let refused = await #expect(throws: StorageError.self) { _ = try await plane.get(accounts[0], object) }
        #expect(refused?.code == .suspended)

        // Restore: recovered in Azure half an hour later; unwrap verified, reads work again.
        clock.advance(by: .seconds(1800))
        try server.recoverKey(key.name)
        let restored = await pass()
        #expect(restored.state == .ok && restored.accounts.allSatisfy { !$0.suspended })
        #expect(restored.outageSeconds == 1800)
        #expect(try await plane.get(accounts[0], object).plaintext == Array("ledger".utf8))
        server.clearRequests()

        // Throttling the provider can wait out itself (Retry-After 1 s, within its 2 s limit).
        server.inject(.throttled(retryAfter: 1), times: 1, matching: .vault)
        let shortThrottle = await pass()
        #expect(shortThrottle.state == .ok && shortThrottle.retries == 0)
        #expect(vaultRequests().compactMap(\.status) == [429, 200, 200])

        // A Retry-After beyond the provider's limit goes back to the pass, which honours it.
        delays.withLock { $0 = [] }
        server.inject(.throttled(retryAfter: 30), times: 1, matching: .vault)
        let longThrottle = await pass()
        #expect(longThrottle.state == .ok && longThrottle.retries == 1)
        #expect(delays.withLock { $0 } == [.seconds(30)])
        _ = vaultRequests()

        // An outage (503 on every request): degraded, nothing suspended, the cache keeps serving.
        server.inject(.serverError(status: 503), times: 1_000, matching: .vault)
        let outage = await pass()
        let outageRequests = vaultRequests()
        #expect(outage.state == .degraded && outage.accounts.allSatisfy { !$0.suspended })
        #expect(outage.cause?.contains("unreachable") == true, "cause: \(outage.cause ?? "none")")
        #expect(outageRequests.allSatisfy { $0.status == 503 } && outageRequests.count == 15,
                "3 provider attempts × 5 pass attempts, got \(outageRequests.count)")
        #expect(try await plane.get(accounts[0], object).plaintext == Array("ledger".utf8))

        // The vault comes back: in sync again.
        server.clearFaults()
        let back = await pass()
        #expect(back.state == .ok && back.inSyncCount == 3)
    }
}
