import CMKAccounts
import CMKAzureKeyVault
import CMKAzureTestServer
import CMKCore
import CMKEnvelope
import CMKSyncer
import CMKTesting
import Foundation
import Testing

/// The diagnoses of defect 15 end to end: the provider over TLS against the test server with a
/// fault injected on every vault request, and a sync pass on top. Neither fault may read as a
/// disabled version, a missing key or a pull.
@Suite("Azure provider diagnoses against the test server", .serialized)
struct FaultDiagnosisTests {
    let key = try! KeyReference("data-at-rest-rsa2048")

    /// One pass over one in-memory account, after a first pass that bound it.
    func passUnder(_ fault: Fault) async throws -> (error: VaultError?, report: SyncReport, requests: [RecordedRequest]) {
        let clock = ManualClock(Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)))
        let (server, vault, cleanup) = try await TestServerTests.connect(clock: clock)
        do {
            _ = try server.createKey(key.name)
            let cache = DEKCache(configuration: try .init(), clock: clock)
            let counted = CountingKeyVault(vault)
            let resolver = DEKResolver(vault: counted, cache: cache)
            let accounts = [Account(name: "files-1", kind: .file, driver: InMemoryStorageDriver(account: "files-1"), key: key)]
            func pass(_ previous: SyncReport?) async -> SyncReport {
                await SyncPass(settings: .init(key: key, policy: .init(), concurrency: 1, retry: RetryPolicy(attempts: 1)),
                               accounts: accounts, vault: counted, executor: RebindExecutor(resolver: resolver, clock: clock), clock: clock,
                               sleep: { _ in }, random: { 0.5 }).run(previous: previous).report
            }
            let first = await pass(nil)
            #expect(first.state == .ok, "first pass: \(first.state)")
            server.inject(fault, times: 100, matching: .vault)
            server.clearRequests()
            var error: VaultError?
            do { _ = try await vault.snapshot(of: key) } catch let thrown as VaultError { error = thrown }
            let report = await pass(first)
            let requests = server.requests.filter { $0.endpoint == .vault && $0.hadAuthorization }
            await cleanup()
            return (error, report, requests)
        } catch {
            await cleanup()
            throw error
        }
    }

    @Test("403 ForbiddenByConnection: access denied by the network rules, no disabled version, no suspension")
    func forbiddenByConnection() async throws {
        let (error, report, _) = try await passUnder(.forbiddenByConnection)
        #expect(error?.code == .forbidden, "\(String(describing: error))")
        #expect(error?.reason.contains("network rules refuse this host") == true, "\(String(describing: error))")
        #expect(error?.codeName != "vault.version-disabled")
        #expect(report.state != .keyPulled && !report.accounts.contains { $0.suspended })
        #expect(report.state == .degraded, "state \(report.state): \(report.cause ?? "-")")
        #expect(report.accounts.allSatisfy { $0.outcome.reason?.contains("version-disabled") != true }, "\(report.accounts.map(\.outcome))")
    }

    @Test("an HTML 404 on every path: a misconfiguration naming the URL, never key-missing or a pull")
    func proxyNotFound() async throws {
        let (error, report, requests) = try await passUnder(.notFoundPage)
        #expect(error?.code == .misconfigured, "\(String(describing: error))")
        #expect(error?.reason.contains("https://127.0.0.1:") == true && error?.reason.contains("not Key Vault's answer") == true,
                "\(String(describing: error))")
        #expect(report.state != .critical && report.state != .keyPulled, "state \(report.state)")
        #expect(!report.accounts.contains { $0.suspended })
        #expect(!requests.contains { $0.path.hasPrefix("/deletedkeys/") }, "no deleted-key lookup after a foreign 404: \(requests.map(\.path))")
    }
}
