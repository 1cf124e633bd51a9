@testable import CMKAzureKeyVault
import CMKCore
import Foundation
import Synchronization

/// A transport that answers from a script: token requests get a token, vault requests are routed
/// by operation (`get-key`, `list-versions`, ...) to queued responses. It records every request.
final class ScriptedTransport: AzureHTTPTransport {
    struct State {
        var queues: [String: [AzureHTTPResponse]] = [:]
        var requests: [AzureHTTPRequest] = []
        var tokenRequests: [AzureHTTPRequest] = []
        var tokenCounter = 0
        var failures: [String: [AzureTransportError]] = [:]
    }

    let state = Mutex(State())
    /// The lifetime of issued tokens in seconds.
    let tokenLifetime: Int

    init(tokenLifetime: Int = 3600) { self.tokenLifetime = tokenLifetime }

    /// Queues a response for the next request of `route`.
    func enqueue(_ route: String, _ response: AzureHTTPResponse) {
        state.withLock { $0.queues[route, default: []].append(response) }
    }

    /// Queues a transport failure for the next request of `route` (before any response).
    func fail(_ route: String, _ error: AzureTransportError) {
        state.withLock { $0.failures[route, default: []].append(error) }
    }

    var requests: [AzureHTTPRequest] { state.withLock { $0.requests } }
    var tokenRequests: [AzureHTTPRequest] { state.withLock { $0.tokenRequests } }
    func routes() -> [String] { requests.map { Route.of($0.method, $0.url.path) } }

    func send(_ request: AzureHTTPRequest) async throws -> AzureHTTPResponse {
        if request.url.path.hasSuffix("/oauth2/v2.0/token") || request.url.path.hasSuffix("/metadata/identity/oauth2/token") {
            let number = state.withLock { state in
                state.tokenRequests.append(request)
                state.tokenCounter += 1
                return state.tokenCounter
            }
            return .json(200, #"{"token_type":"Bearer","expires_in":\#(tokenLifetime),"access_token":"token-\#(number)"}"#)
        }
        let route = Route.of(request.method, request.url.path)
        return try state.withLock { state in
            state.requests.append(request)
            if var failures = state.failures[route], !failures.isEmpty {
                let failure = failures.removeFirst()
                state.failures[route] = failures
                throw failure
            }
            guard var queue = state.queues[route], !queue.isEmpty else {
                return .json(599, #"{"error":{"code":"Unscripted","message":"no scripted answer for \#(route)"}}"#)
            }
            let response = queue.removeFirst()
            state.queues[route] = queue
            return response
        }
    }
}

extension AzureHTTPResponse {
    static func json(_ status: Int, _ body: String, headers: [(name: String, value: String)] = []) -> AzureHTTPResponse {
        AzureHTTPResponse(status: status, headers: [("Content-Type", "application/json; charset=utf-8")] + headers, body: Data(body.utf8))
    }
}

/// The operation a Key Vault request path names.
enum Route {
    static func of(_ method: String, _ rawPath: String) -> String {
        let parts = rawPath.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        switch (method, parts.first ?? "", parts.count) {
        case ("POST", "keys", 2) where parts[1] == "restore": return "restore"
        case ("POST", "keys", 3): return ["create": "create-key", "rotate": "rotate-key", "backup": "backup"][parts[2]] ?? "post-\(parts[2])"
        case ("POST", "keys", 4): return ["wrapkey": "wrap", "unwrapkey": "unwrap", "encrypt": "encrypt", "decrypt": "decrypt"][parts[3]] ?? "post-\(parts[3])"
        case ("GET", "keys", 2): return "get-key"
        case ("GET", "keys", 3) where parts[2] == "versions": return "list-versions"
        case ("GET", "keys", 3) where parts[2] == "rotationpolicy", ("PUT", "keys", 3) where parts[2] == "rotationpolicy": return "rotation-policy"
        case ("GET", "keys", 3): return "get-key-version"
        case ("PATCH", "keys", _): return "update-key"
        case ("PUT", "keys", 2): return "import-key"
        case ("DELETE", "keys", 2): return "delete-key"
        case ("GET", "deletedkeys", 2): return "get-deleted-key"
        case ("POST", "deletedkeys", 3) where parts[2] == "recover": return "recover-key"
        case ("DELETE", "deletedkeys", 2): return "purge-key"
        default: return "\(method) \(rawPath)"
        }
    }
}

/// A runtime whose clocks only move when told and whose sleeps are recorded and instant.
final class ManualRuntime: Sendable {
    private let state = Mutex<(now: Duration, wall: Date, sleeps: [Duration])>((.zero, Date(timeIntervalSince1970: 1_780_000_000), []))

    var sleeps: [Duration] { state.withLock { $0.sleeps } }
    func advance(_ duration: Duration) {
        state.withLock { $0.now += duration; $0.wall = $0.wall.addingTimeInterval(duration.timeInterval) }
    }

    var runtime: AzureRuntime {
        AzureRuntime(monotonicNow: { self.state.withLock { $0.now } }, wallNow: { self.state.withLock { $0.wall } },
                     sleep: { duration in self.state.withLock { $0.sleeps.append(duration); $0.now += duration; $0.wall = $0.wall.addingTimeInterval(duration.timeInterval) } },
                     jitter: { 0.5 })
    }
}

enum Fixtures {
    static let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"

    /// A client-secret file (mode 0600) in a fresh temporary directory.
    static func secretFile(_ secret: String = "s3cr3t-client-value") throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("akv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = directory.appendingPathComponent("client-secret").path
        _ = FileManager.default.createFile(atPath: path, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600])
        return path
    }

    static func configuration(secretFile: String, tenant: String = Fixtures.tenant, apiVersion: String = "7.6",
                              retry: RequestRetryPolicy = RequestRetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(500), maxDelay: .seconds(4), maximumRetryAfter: .seconds(10)),
                              rateLimit: AzureKeyVaultConfiguration.RateLimit = .default) -> AzureKeyVaultConfiguration {
        AzureKeyVaultConfiguration(vaultURL: URL(string: "https://sanitized.vault.azure.net")!,
                                   credential: .clientSecret(tenantID: tenant, clientID: "00000000-0000-0000-0000-0000000000c1", secretFile: secretFile),
                                   apiVersion: apiVersion, rateLimit: rateLimit, retry: retry)
    }

    static func vault(_ transport: ScriptedTransport, runtime: ManualRuntime = ManualRuntime(), tenant: String = Fixtures.tenant,
                      apiVersion: String = "7.6", retry: RequestRetryPolicy? = nil,
                      rateLimit: AzureKeyVaultConfiguration.RateLimit = .default) throws -> AzureKeyVault {
        var configuration = configuration(secretFile: try secretFile(), tenant: tenant, apiVersion: apiVersion, rateLimit: rateLimit)
        if let retry { configuration.retry = retry }
        return try AzureKeyVault(configuration: configuration, transport: transport, runtime: runtime.runtime)
    }
}
