import CMKEntra
import CMKKeyVaultAPI
import Foundation

/// What the connection handler does with a request.
enum Outcome: Sendable {
    case respond(ServerResponse, delay: Duration?)
    case close
}

/// Sends each request to the identity platform, IMDS or the vault, applying authentication, the
/// challenge, injected faults and the rate limit in the order Azure would, and logs it.
final class Dispatcher: Sendable {
    enum Listener: Sendable { case tls, imds }

    let vault: KeyVaultAPI
    let identity: TokenService
    let traffic: TrafficControl

    init(vault: KeyVaultAPI, identity: TokenService, traffic: TrafficControl) {
        self.vault = vault
        self.identity = identity
        self.traffic = traffic
    }

    func respond(to request: ServerRequest, on listener: Listener) -> Outcome {
        let endpoint: RecordedRequest.Endpoint
        var fault: Fault?
        var outcome: Outcome
        switch listener {
        case .imds:
            endpoint = .imds
            fault = traffic.takeFault(.imds, method: request.method, path: request.path)
            outcome = apply(fault, endpoint: endpoint) ?? .respond(identity.handleIMDS(request), delay: nil)
        case .tls:
            if let answer = identity.handle(request) {
                endpoint = request.path.hasSuffix("/token") ? .token : .discovery
                fault = traffic.takeFault(endpoint, method: request.method, path: request.path)
                outcome = apply(fault, endpoint: endpoint) ?? .respond(answer, delay: nil)
            } else {
                endpoint = .vault
                (fault, outcome) = respondAsVault(to: request)
            }
        }
        if case .respond(var response, let delay) = outcome, endpoint == .vault {
            response.headers += vaultHeaders(request)
            outcome = .respond(response, delay: delay)
        }
        var status: Int?
        if case .respond(let response, _) = outcome { status = response.status }
        traffic.record(RecordedRequest(
            endpoint: endpoint, method: request.method, path: request.path, query: request.rawQuery, status: status,
            hadAuthorization: request.header("Authorization") != nil, fault: fault))
        return outcome
    }

    private func respondAsVault(to request: ServerRequest) -> (Fault?, Outcome) {
        switch identity.verify(authorization: request.header("Authorization")) {
        case .missing: return (nil, .respond(challenge(.missingToken), delay: nil))
        case .unknown: return (nil, .respond(challenge(.unknownToken), delay: nil))
        case .expired: return (nil, .respond(challenge(.expiredToken), delay: nil))
        case .wrongAudience: return (nil, .respond(challenge(.wrongAudience), delay: nil))
        case .valid: break
        }
        let fault = traffic.takeFault(.vault, method: request.method, path: request.path)
        if let faulted = apply(fault, endpoint: .vault) { return (fault, faulted) }
        if let throttled = traffic.throttle() { return (nil, .respond(throttled, delay: nil)) }
        let response = vault.handle(request)
        if case .latency(let delay) = fault { return (fault, .respond(response, delay: delay)) }
        return (fault, .respond(response, delay: nil))
    }

    /// The answer a fault replaces the normal one with; `nil` for no fault or plain latency (which
    /// delays the normal answer).
    private func apply(_ fault: Fault?, endpoint: RecordedRequest.Endpoint) -> Outcome? {
        guard let fault else { return nil }
        let vaultShaped = endpoint == .vault
        switch fault {
        case .latency: return nil
        case .closeConnection: return .close
        case .malformedJSON:
            return .respond(ServerResponse(status: 200, headers: [("Content-Type", "application/json; charset=utf-8")], body: Data("{\"key\": {\"kid\": ".utf8)), delay: nil)
        case .throttled(let retryAfter):
            if vaultShaped { return .respond(KeyVaultError.throttled(retryAfter: retryAfter).response, delay: nil) }
            var response = AADError(error: "temporarily_unavailable", description: "AADSTS50196: The server is throttling requests.", code: 50196).response(status: 429)
            if let retryAfter { response.headers.append(("Retry-After", String(retryAfter))) }
            return .respond(response, delay: nil)
        case .serverError(let status):
            if vaultShaped { return .respond(KeyVaultError.serverError(status).response, delay: nil) }
            return .respond(AADError(error: "temporarily_unavailable", description: "AADSTS90033: A transient error has occurred. Please try again.", code: 90033).response(status: status), delay: nil)
        case .forbiddenByRbac:
            return .respond(KeyVaultError.forbiddenByRbac(action: "Microsoft.KeyVault/vaults/keys/read", vault: vault.vaultName).response, delay: nil)
        case .forbiddenByConnection:
            return .respond(KeyVaultError.forbiddenByConnection(vault: vault.vaultName).response, delay: nil)
        case .notFoundPage:
            let page = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            return .respond(ServerResponse(status: 404, headers: [("Content-Type", "text/html")], body: Data(page.utf8)), delay: nil)
        case .unauthorized:
            return .respond(challenge(.unknownToken), delay: nil)
        }
    }

    /// A 401 with Azure's challenge: `Bearer authorization="<authority>/<tenant>", resource="<resource>"`.
    private func challenge(_ error: KeyVaultError) -> ServerResponse {
        var response = error.response
        let authority = identity.configuration.challengeAuthority ?? identity.authorityURL
        response.headers.append((
            "WWW-Authenticate",
            "Bearer authorization=\"\(authority)/\(identity.configuration.tenantID)\", resource=\"\(identity.configuration.vaultResource)\""))
        return response
    }

    /// The headers every Key Vault response carries.
    private func vaultHeaders(_ request: ServerRequest) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [
            ("Cache-Control", "no-cache"), ("Pragma", "no-cache"), ("Expires", "-1"),
            ("Strict-Transport-Security", "max-age=31536000;includeSubDomains"), ("X-Content-Type-Options", "nosniff"),
            ("x-ms-request-id", UUID().uuidString.lowercased()), ("x-ms-keyvault-region", "emulator"),
            ("x-ms-keyvault-service-version", "1.9.3070.2"),
            ("x-ms-keyvault-network-info", "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;"),
        ]
        if let clientRequestID = request.header("x-ms-client-request-id") { headers.append(("x-ms-client-request-id", clientRequestID)) }
        return headers
    }
}
