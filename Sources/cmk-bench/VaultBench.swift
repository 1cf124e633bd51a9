import AsyncHTTPClient
import CMKAzureTestServer
import CMKConfiguration
import CMKIdentity
import CMKTransparency
import CMKVaultLog
import CMKVaultService
import Crypto
import CMKTesting
import Foundation
import Glibc
import Logging
import NIOCore
import NIOSSL

/// Suite 7: the vault service (issue 15). Tokens in-process against `openssl speed ecdsap256`;
/// the real HTTPS service on loopback, authenticated routes against a route that needs no
/// authentication; the security log's appends, pages and proofs at `vaultLogRecords` records,
/// checkpoint signing against `openssl speed ed25519`.
enum VaultBench {
    static func run(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        try await tokens(plan, scratch: scratch + "/vault-tokens", into: &results)
        try await https(plan, scratch: scratch + "/vault-https", into: &results)
        try await securityLog(plan, scratch: scratch + "/vault-log", into: &results)
    }

    // MARK: Tokens in-process

    static func tokens(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        let store = try IdentityStore(stateDirectory: scratch)
        let service = TokenService(store: store, keys: try TokenSigningKeys(stateDirectory: scratch), issuerBase: "https://127.0.0.1:8443")
        let audience = "https://127.0.0.1:8443"
        let admin = try store.addAdministrator(name: "bench")
        guard let principal = try store.authenticate(clientID: admin.clientID, secret: admin.secret.text).principal else {
            throw OpenSSLAnchor.Failure(description: "the benchmark administrator's fresh secret did not authenticate")
        }
        let token = try service.issue(for: principal, audience: audience).token
        guard try service.verify(token, audience: audience).token != nil else {
            throw OpenSSLAnchor.Failure(description: "a token just issued did not verify: \(try service.verify(token, audience: audience))")
        }
        let issues = try await Rate.measure(units: 1, seconds: plan.cryptoSeconds) {
            _ = try service.issue(for: principal, audience: audience)
        }
        // Each verification checks the signature and reads the credential's row in identity.sqlite.
        let verifications = try await Rate.measure(units: 1, seconds: plan.cryptoSeconds) {
            guard try service.verify(token, audience: audience).token != nil else {
                throw OpenSSLAnchor.Failure(description: "a valid token was refused during the benchmark")
            }
        }
        // The bare P-256 operations of swift-crypto (BoringSSL) on a token-sized input: how much of
        // the distance to openssl is the library's and how much the token's own work.
        let key = P256.Signing.PrivateKey(), input = Data(token.utf8)
        let signature = try key.signature(for: input)
        let librarySigns = try await Rate.measure(units: 1, seconds: plan.cryptoSeconds) { _ = try key.signature(for: input) }
        let libraryVerifies = try await Rate.measure(units: 1, seconds: plan.cryptoSeconds) {
            guard key.publicKey.isValidSignature(signature, for: input) else { throw OpenSSLAnchor.Failure(description: "a P-256 signature did not verify") }
        }
        let anchor = try OpenSSLAnchor.ecdsaP256(seconds: plan.opensslSeconds)
        results.add(Figure(suite: "vault", name: "token issues (ES256 JWT, in-process)", value: issues.perCPUSecond, unit: "op/s",
                           anchor: anchor.signPerSecond, anchorName: "openssl ecdsap256 sign", target: nil,
                           detail: ["wall op/s": issues.perWallSecond, "swift-crypto P-256 sign op/s": librarySigns.perCPUSecond]))
        results.add(Figure(suite: "vault", name: "token verifications (+ credential lookup in SQLite)", value: verifications.perCPUSecond,
                           unit: "op/s", anchor: anchor.verifyPerSecond, anchorName: "openssl ecdsap256 verify", target: nil,
                           detail: ["wall op/s": verifications.perWallSecond, "swift-crypto P-256 verify op/s": libraryVerifies.perCPUSecond]))
    }

    // MARK: The HTTPS service on loopback

    static func https(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let ca = try TestCertificateAuthority.make()
        defer { ca.remove() }
        let port = try LoopbackPort.free()
        let url = "https://127.0.0.1:\(port)"
        let configuration = try VaultServiceConfiguration.parse(yaml: """
            state-directory: \(scratch)/state
            public-url: \(url)
            listen: 127.0.0.1:\(port)
            tls: {certificate-file: \(ca.server.certificatePath), key-file: \(ca.server.privateKeyPath)}
            logging: {format: text, level: warning}
            """, file: scratch + "/cmk-vault.yaml", environment: [:])
        // The administrator is added before the service starts, as `cmkctl admins add` would.
        let store = try IdentityStore(stateDirectory: configuration.stateDirectory)
        let admin = try store.addAdministrator(name: "bench")
        let tenant = store.tenant.tenantID

        // The service's journal events go nowhere: the figure is the service's, not the logger's.
        let server = VaultServer(configuration: configuration, logger: Logger(label: "cmk-bench.vault") { _ in SwiftLogNoOpLogHandler() })
        let (listening, continuation) = AsyncThrowingStream<Void, any Error>.makeStream()
        let serving = Task {
            do {
                try await server.run(environment: [:]) { _ in continuation.yield() }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
                throw error
            }
        }
        var started = listening.makeAsyncIterator()
        guard try await started.next() != nil else { throw OpenSSLAnchor.Failure(description: "the vault service stopped before it listened") }

        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(ca.caCertificatePath)
        var clientConfiguration = HTTPClient.Configuration(tlsConfiguration: tls)
        clientConfiguration.httpVersion = .http1Only
        clientConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = plan.vaultConcurrency
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        do {
            let form = "grant_type=client_credentials&client_id=\(admin.clientID)&client_secret=\(admin.secret.text)&scope=\(url)/.default"
            let tokenRequest: @Sendable () -> HTTPClientRequest = {
                var request = HTTPClientRequest(url: "\(url)/\(tenant)/oauth2/v2.0/token")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                request.body = .bytes(ByteBuffer(string: form))
                return request
            }
            let answer = try await send(client, tokenRequest())
            guard let object = try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any],
                  let token = object["access_token"] as? String else { throw OpenSSLAnchor.Failure(description: "the token endpoint answered no access_token") }

            let seconds = plan.vaultHTTPSeconds, concurrency = plan.vaultConcurrency
            let discovery = try await load(client, seconds: seconds, concurrency: concurrency) {
                HTTPClientRequest(url: "\(url)/\(tenant)/v2.0/.well-known/openid-configuration")
            }
            let applications = try await load(client, seconds: seconds, concurrency: concurrency) {
                var request = HTTPClientRequest(url: "\(url)/v1.0/applications")
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                return request
            }
            let tokens = try await load(client, seconds: seconds, concurrency: concurrency, tokenRequest)
            let anchorName = "GET discovery document (no authentication), \(concurrency) concurrent"
            for (name, figure) in [("GET /v1.0/applications (bearer token)", applications), ("POST token (client secret → ES256 token)", tokens)] {
                results.add(Figure(suite: "vault", name: "\(name), \(concurrency) concurrent", value: figure.perSecond, unit: "op/s",
                                   anchor: discovery.perSecond, anchorName: anchorName, target: nil,
                                   detail: ["requests": Double(figure.latency.count), "p50 s": figure.latency.p50, "p99 s": figure.latency.p99,
                                            "anchor p50 s": discovery.latency.p50, "anchor p99 s": discovery.latency.p99]))
                results.add(Figure(suite: "vault", name: "\(name) latency p50", value: figure.latency.p50, unit: "s",
                                   anchor: discovery.latency.p50, anchorName: anchorName + ", p50",
                                   detail: ["p90 s": figure.latency.p90, "p99 s": figure.latency.p99, "max s": figure.latency.max]))
            }
            results.notes.append("vault: the HTTPS figures are wall-clock with the client and the service in one process on the same cores (\(ProcessInfo.processInfo.activeProcessorCount)); the service's journal events are discarded")
            try await client.shutdown()
        } catch {
            try? await client.shutdown()
            serving.cancel()
            _ = await serving.result
            throw error
        }
        serving.cancel()
        if case .failure(let error) = await serving.result, !(error is CancellationError) {
            results.notes.append("vault: the service ended with \(type(of: error)) when stopped")
        }
    }

    /// One request that must be answered 200; the body.
    static func send(_ client: HTTPClient, _ request: HTTPClientRequest) async throws -> String {
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status == .ok else {
            throw OpenSSLAnchor.Failure(description: "\(request.method) \(request.url) answered \(response.status.code): \(body.prefix(300))")
        }
        return body
    }

    /// Requests answered per wall second by `concurrency` clients sending `make()` back to back
    /// for `seconds` (after a 1 s warm-up that opens the connections), and their latencies.
    /// Every answer must be 200: a refusal is a failed benchmark, not a fast request.
    static func load(_ client: HTTPClient, seconds: Double, concurrency: Int,
                     _ make: @escaping @Sendable () -> HTTPClientRequest) async throws -> (perSecond: Double, latency: Distribution) {
        _ = try await drive(client, seconds: 1, concurrency: concurrency, make)
        let start = Measure.wall()
        let latencies = try await drive(client, seconds: seconds, concurrency: concurrency, make)
        return (Double(latencies.count) / (Measure.wall() - start), Distribution(latencies))
    }

    private static func drive(_ client: HTTPClient, seconds: Double, concurrency: Int,
                              _ make: @escaping @Sendable () -> HTTPClientRequest) async throws -> [Double] {
        let deadline = Measure.wall() + seconds
        return try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var latencies: [Double] = []
                    while Measure.wall() < deadline {
                        let start = Measure.wall()
                        _ = try await send(client, make())
                        latencies.append(Measure.wall() - start)
                    }
                    return latencies
                }
            }
            var all: [Double] = []
            for try await part in group { all += part }
            return all
        }
    }

    // MARK: The security log

    /// The operations of the appended records: mostly token issues, 2 % failed sign-ins, 1 % key
    /// changes; the filter figure asks for the failed sign-ins.
    static func operation(_ index: Int) -> String {
        index % 100 == 0 ? "credential-added" : index % 50 == 1 ? "authentication-failed" : "token-issued"
    }

    static func securityLog(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let tenant = UUID().uuidString.lowercased()
        let log = try VaultSecurityLog(stateDirectory: scratch, origin: LogSigningKey.origin(publicURL: "https://vault.bench.invalid", tenantID: tenant))
        let count = plan.vaultLogRecords
        let actors = (0..<10).map { _ in UUID().uuidString.lowercased() }
        let appendStart = Measure.wall(), appendCPU = Measure.processCPU()
        for index in 0..<count {
            try await log.append(SecurityLogEvent(operation: operation(index), actor: actors[index % actors.count], role: "administrator",
                                            address: "192.0.2.\(index % 250 + 1)", details: ["audience": "https://vault.bench.invalid"]))
        }
        let appendWall = Measure.wall() - appendStart, appendCPUSeconds = Measure.processCPU() - appendCPU
        guard try log.size() == UInt64(count) else { throw OpenSSLAnchor.Failure(description: "the security log holds \(try log.size()) records, not \(count)") }
        let records = "\(count) records"
        results.add(Figure(suite: "vault", name: "security-log appends (1 transaction each, synchronous FULL)", value: Double(count) / appendWall,
                           unit: "op/s", detail: ["records": Double(count), "seconds": appendWall, "per CPU second": Double(count) / appendCPUSeconds,
                                                  "file bytes": Double(fileSize(log.path) + fileSize(log.path + "-wal"))]))

        let size = UInt64(count), page = 1_000, repetitions = plan.vaultLogRepetitions
        // Anchors: the same rows and nodes read from the same file through SQLite's C API alone
        // (RawLogReads), timed in the same way right after each figure.
        let raw = try RawLogReads(path: log.path)
        for (label, start) in [("start", UInt64(0)), ("middle", size / 2), ("end", size - UInt64(page))] {
            let d = try await timed(repetitions) {
                let got = try log.records(.init(startIndex: start, limit: page))
                guard got.leaves.count == page, got.leaves.first?.index == start else {
                    throw OpenSSLAnchor.Failure(description: "a page at \(start) held \(got.leaves.count) records from \(got.leaves.first?.index ?? 0)")
                }
            }
            let anchor = try await timed(repetitions) {
                let rows = try raw.page(start: start, limit: page)
                guard rows == min(page + 1, count - Int(start)) else { throw OpenSSLAnchor.Failure(description: "a raw page at \(start) held \(rows) rows") }
            }
            results.add(Figure(suite: "vault", name: "security-log page of \(page) at the \(label), \(records), p50", value: d.p50, unit: "s",
                               anchor: anchor.p50, anchorName: "the same SELECT of the same rows, SQLite C API, p50", target: nil,
                               detail: ["p90 s": d.p90, "p99 s": d.p99, "samples": Double(d.count), "anchor p99 s": anchor.p99]))
        }
        let filtered = try await timed(repetitions) {
            let got = try log.records(.init(operation: "authentication-failed", startIndex: size / 2, limit: page))
            guard got.leaves.count == page else { throw OpenSSLAnchor.Failure(description: "the filtered page held \(got.leaves.count) records") }
        }
        let filteredAnchor = try await timed(repetitions) {
            let rows = try raw.page(start: size / 2, operation: "authentication-failed", limit: page)
            guard rows >= page else { throw OpenSSLAnchor.Failure(description: "the raw filtered page held \(rows) rows") }
        }
        results.add(Figure(suite: "vault", name: "security-log page of \(page), operation filter (2 %), \(records), p50", value: filtered.p50, unit: "s",
                           anchor: filteredAnchor.p50, anchorName: "the same SELECT of the same rows, SQLite C API, p50", target: nil,
                           detail: ["p90 s": filtered.p90, "p99 s": filtered.p99, "samples": Double(filtered.count), "anchor p99 s": filteredAnchor.p99]))

        // Proofs: the same random requests for the figure and its anchor, the node lookups each
        // proof makes (noted by building it over the raw file, and checked equal to the service's
        // proof) replayed as raw point lookups in one read transaction.
        var random = SystemRandomNumberGenerator()
        let indices = (0...repetitions).map { _ in UInt64.random(in: 0..<size, using: &random) }
        let oldSizes = (0...repetitions).map { _ in UInt64.random(in: 1..<size, using: &random) }
        var inclusionReads: [[(level: Int, index: UInt64)]] = [], consistencyReads: [[(level: Int, index: UInt64)]] = []
        for (index, old) in zip(indices, oldSizes) {
            let inclusion = try raw.nodesRead(size: size) { try $0.inclusionProof(index: index, size: size) }
            let consistency = try raw.nodesRead(size: size) { try $0.consistencyProof(from: old, to: size) }
            guard inclusion.proof == (try log.inclusionProof(index: index, size: size)),
                  consistency.proof == (try log.consistencyProof(from: old, to: size)) else {
                throw OpenSSLAnchor.Failure(description: "a proof over the raw file differs from the service's (index \(index), old size \(old))")
            }
            inclusionReads.append(inclusion.nodes)
            consistencyReads.append(consistency.nodes)
        }
        for (kind, reads) in [("inclusion proof (random index)", inclusionReads), ("consistency proof (random old size)", consistencyReads)] {
            var next = 0
            let proofs = try await timed(repetitions) {
                defer { next += 1 }
                let proof = kind.hasPrefix("inclusion") ? try log.inclusionProof(index: indices[next], size: size)
                                                         : try log.consistencyProof(from: oldSizes[next], to: size)
                guard !proof.isEmpty else { throw OpenSSLAnchor.Failure(description: "an empty \(kind) in a tree of \(size)") }
            }
            next = 0
            let lookups = try await timed(repetitions) {
                defer { next += 1 }
                guard try raw.lookups(reads[next]) == 32 * reads[next].count else { throw OpenSSLAnchor.Failure(description: "a raw node was not 32 bytes") }
            }
            next = 0
            let prepared = try await timed(repetitions) {
                defer { next += 1 }
                guard try raw.lookups(reads[next], preparingEach: true) == 32 * reads[next].count else { throw OpenSSLAnchor.Failure(description: "a raw node was not 32 bytes") }
            }
            let counts = reads.map { Double($0.count) }
            results.add(Figure(suite: "vault", name: "\(kind), \(records), p50", value: proofs.p50, unit: "s",
                               anchor: lookups.p50, anchorName: "its node lookups as raw SQLite point reads, one read transaction, p50", target: nil,
                               detail: ["p90 s": proofs.p90, "p99 s": proofs.p99, "samples": Double(proofs.count), "anchor p99 s": lookups.p99,
                                        "node lookups mean": counts.reduce(0, +) / Double(counts.count), "node lookups max": counts.max() ?? 0,
                                        "the lookups each prepared anew p50 s": prepared.p50]))
        }

        // Signing alone: the checkpoint note of the current root with the log's own key.
        guard let signer = try LogSigningKey.load(stateDirectory: scratch) else {
            throw OpenSSLAnchor.Failure(description: "the security log made no \(LogSigningKey.fileName) in \(scratch)")
        }
        let root = try log.rootHash(size: size)
        let checkpoint = try Checkpoint(origin: log.origin, size: size, rootHash: root)
        let signs = try await Rate.measure(units: 1, seconds: plan.cryptoSeconds) { _ = try checkpoint.signedNote(by: signer) }
        let ed25519 = try OpenSSLAnchor.ed25519(seconds: plan.opensslSeconds)
        results.add(Figure(suite: "vault", name: "checkpoint signatures (C2SP note, Ed25519)", value: signs.perCPUSecond, unit: "op/s",
                           anchor: ed25519.signPerSecond, anchorName: "openssl ed25519 sign", target: nil, detail: ["wall op/s": signs.perWallSecond]))
        // The service's path: one more record, then the checkpoint of the new size (root, record of
        // the signed size in the database, signature).
        var index = count
        let fresh = try await timed(repetitions, before: {
            try await log.append(SecurityLogEvent(operation: operation(index), actor: actors[0], address: "192.0.2.1"))
            index += 1
        }) {
            _ = try log.checkpoint()
        }
        let last = try log.checkpoint()
        guard last.size == UInt64(index), last.size == (try log.size()) else {
            throw OpenSSLAnchor.Failure(description: "the last checkpoint has size \(last.size), not \(index)")
        }
        results.add(Figure(suite: "vault", name: "new signed checkpoint after an append, \(records), p50", value: fresh.p50, unit: "s",
                           detail: ["p90 s": fresh.p90, "p99 s": fresh.p99, "samples": Double(fresh.count)]))
    }

    /// The distribution of `repetitions` timed runs of `body` (after one untimed run), with
    /// `before` run untimed ahead of each.
    static func timed(_ repetitions: Int, before: () async throws -> Void = {}, _ body: () throws -> Void) async throws -> Distribution {
        try await before()
        try body()
        var samples: [Double] = []
        for _ in 0..<repetitions {
            try await before()
            let start = Measure.wall()
            try body()
            samples.append(Measure.wall() - start)
        }
        return Distribution(samples)
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }
}
