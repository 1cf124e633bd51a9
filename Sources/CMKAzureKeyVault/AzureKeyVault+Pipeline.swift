import CMKCore
import Foundation
import Logging

/// One vault request before the pipeline adds authentication, limits and retries.
struct VaultCall: Sendable {
    /// A value-free operation name for logs and counters (`get-key`, `unwrap`).
    var operation: String
    var method: String
    /// The percent-encoded path, e.g. `/keys/data-at-rest-rsa2048/`.
    var path: String
    /// Extra query items after `api-version`.
    var query: [URLQueryItem] = []
    var body: Data?
    /// Safe to send twice: retried after 5xx and timeouts too. Non-idempotent calls (create,
    /// rotate, recover) are retried only after 429, which the service answers before acting.
    var idempotent = true
    /// A full query string to use instead of `api-version` + `query` (a `nextLink`'s).
    var rawQuery: String?
}

extension AzureKeyVault {
    /// Sends a call through the limiter, the token cache, the 401 challenge and the retry policy.
    /// Returns every response except those the pipeline consumed: a final 429, 5xx or transport
    /// failure is thrown as `.throttled` or `.unavailable`.
    func send(_ call: VaultCall) async throws(VaultError) -> AzureHTTPResponse {
        let policy = configuration.retry
        var attempt = 0
        while true {
            attempt += 1
            do { try await limiter.acquire() } catch { throw VaultError(.unavailable, "\(call.operation) was cancelled") }
            let response: AzureHTTPResponse
            do {
                response = try await authorizedSend(call)
            } catch let failure as AzureTransportError {
                let error = VaultError(.unavailable, "\(call.operation) on \(host): \(failure.detail)", underlying: failure)
                guard attempt < policy.maxAttempts, call.idempotent || failure.kind == .connection else { throw error }
                try await pause(policy.backoff(afterAttempt: attempt, jitter: runtime.jitter()), call, attempt, reason: failure.kind.rawValue)
                continue
            } catch let error as VaultError {
                throw error
            } catch {
                throw VaultError.from(error, call.operation)
            }
            counters.withLock { $0[call.operation, default: 0] += 1 }
            logger.debug("Vault request answered", metadata: [
                "cmk_vault_operation": "\(call.operation)", "cmk_http_status": "\(response.status)", "cmk_attempt": "\(attempt)",
                "cmk_vault_request_id": "\(response.header("x-ms-request-id") ?? "-")",
            ])
            let retryable = response.status == 429 || [500, 502, 503, 504].contains(response.status)
            guard retryable else { return response }
            let retryAfter = RetryAfter.parse(response.header("Retry-After"), now: runtime.wallNow())
            let error = mapped(response, call.operation)
            guard attempt < policy.maxAttempts, response.status == 429 || call.idempotent else { throw error }
            if let retryAfter {
                guard retryAfter <= policy.maximumRetryAfter else { throw error }
                try await pause(retryAfter, call, attempt, reason: "retry-after")
            } else {
                try await pause(policy.backoff(afterAttempt: attempt, jitter: runtime.jitter()), call, attempt, reason: "http-\(response.status)")
            }
        }
    }

    private func pause(_ delay: Duration, _ call: VaultCall, _ attempt: Int, reason: String) async throws(VaultError) {
        logger.debug("Vault request will be retried", metadata: [
            "cmk_vault_operation": "\(call.operation)", "cmk_attempt": "\(attempt)", "cmk_retry_reason": "\(reason)",
            "cmk_retry_delay": "\(delay)",
        ])
        VaultObservation.observer?.vaultRetry(.request)
        do { try await runtime.sleep(delay) } catch {
            throw VaultError(.unavailable, "\(call.operation) was not retried: the daemon is stopping (or the call was cancelled) while backing off")
        }
    }

    /// One exchange with a bearer token; on a 401 challenge, a token for the challenge's
    /// resource and tenant, and one more exchange.
    private func authorizedSend(_ call: VaultCall) async throws -> AzureHTTPResponse {
        let currentResource = resource.withLock { $0 }
        let token = try await tokens.token(resource: currentResource)
        let response = try await transport.send(request(call, token: token))
        guard response.status == 401 else { return response }
        counters.withLock { $0["challenge", default: 0] += 1 }
        guard let header = response.header("WWW-Authenticate"), let challenge = AuthenticationChallenge(header: header) else {
            return response
        }
        guard AuthenticationChallenge.accepts(resource: challenge.resource, configured: configuration.resource, vaultHost: host) else {
            throw VaultError(.unauthorized, "the vault asked for a token for resource \(challenge.resource), which does not belong to \(host); refused (set vault.azure.resource if this is intended)")
        }
        resource.withLock { $0 = challenge.resource }
        let renewed = try await tokens.token(resource: challenge.resource, tenant: challenge.tenantID,
                                             rejected: challenge.resource == currentResource ? token : nil)
        return try await transport.send(request(call, token: renewed))
    }

    var host: String { configuration.vaultURL.host ?? "?" }

    func request(_ call: VaultCall, token: AccessToken) -> AzureHTTPRequest {
        var components = URLComponents()
        components.scheme = configuration.vaultURL.scheme
        components.host = configuration.vaultURL.host
        components.port = configuration.vaultURL.port
        components.percentEncodedPath = call.path
        if let raw = call.rawQuery {
            components.percentEncodedQuery = raw
        } else {
            components.queryItems = [URLQueryItem(name: "api-version", value: configuration.apiVersion)] + call.query
        }
        var headers: [(name: String, value: String)] = [
            ("Accept", "application/json"), ("User-Agent", "cmk-syncer-azure-keyvault/1"),
            ("x-ms-client-request-id", UUID().uuidString.lowercased()),
            ("Authorization", "Bearer " + token.token.reveal()),
        ]
        if call.body != nil { headers.append(("Content-Type", "application/json")) }
        return AzureHTTPRequest(method: call.method, url: components.url!, headers: headers, body: call.body)
    }

    /// Turns a `nextLink` into a call on the configured vault: its path and query are kept, its
    /// host is not trusted (the bearer token only ever goes to the configured vault).
    func nextPage(_ link: String, operation: String) throws(VaultError) -> VaultCall {
        guard let components = URLComponents(string: link), components.percentEncodedPath.hasPrefix("/keys/"),
              let query = components.percentEncodedQuery, !query.isEmpty else {
            throw VaultError(.corrupt, "malformed nextLink in the \(operation) answer from \(host)")
        }
        return VaultCall(operation: operation, method: "GET", path: components.percentEncodedPath, rawQuery: query)
    }

    /// Decodes a JSON answer or throws `.corrupt` naming what was expected.
    func decode<T: Decodable>(_ type: T.Type, _ response: AzureHTTPResponse, _ operation: String) throws(VaultError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: response.body)
        } catch {
            throw VaultError(.corrupt, "malformed JSON in the \(operation) answer from \(host) (HTTP \(response.status)): expected \(T.self)")
        }
    }
}
