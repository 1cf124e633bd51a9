import CMKCore
import Foundation

/// Fetches access tokens from the Microsoft identity platform (client credentials) or from IMDS
/// (managed identity). Secrets are read from their files at each fetch, so a rotated client
/// secret is picked up without a restart.
struct TokenFetcher: Sendable {
    let source: AzureCredentialSource
    let authorityHost: URL
    let imdsEndpoint: URL
    let transport: any AzureHTTPTransport
    let runtime: AzureRuntime

    /// The token endpoint of a tenant: `{authority-host}/{tenant}/oauth2/v2.0/token`.
    func tokenEndpoint(tenant: String) -> URL {
        authorityHost.appendingPathComponent(tenant).appendingPathComponent("oauth2/v2.0/token")
    }

    /// One token for `resource`; `tenant` overrides the configured one only when they agree.
    func fetch(resource: String, challengeTenant: String?) async throws(VaultError) -> AccessToken {
        let request: AzureHTTPRequest
        switch source {
        case .clientSecret(let tenant, let clientID, let secretFile):
            try Self.checkTenant(configured: tenant, challenge: challengeTenant)
            let secret = try SecretFile.readSecret(secretFile, what: "client secret")
            request = Self.form(tokenEndpoint(tenant: tenant), [
                ("client_id", clientID), ("scope", Self.scope(resource)), ("grant_type", "client_credentials"),
                ("client_secret", secret.reveal()),
            ])
        case .clientCertificate(let tenant, let clientID, let certificateFile, let keyFile):
            try Self.checkTenant(configured: tenant, challenge: challengeTenant)
            let endpoint = tokenEndpoint(tenant: tenant)
            let assertion = try ClientAssertion.make(clientID: clientID, audience: endpoint.absoluteString,
                                                     certificateFile: certificateFile, keyFile: keyFile, now: runtime.wallNow())
            request = Self.form(endpoint, [
                ("client_id", clientID), ("scope", Self.scope(resource)), ("grant_type", "client_credentials"),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", assertion.reveal()),
            ])
        case .managedIdentity(let clientID):
            var components = URLComponents(url: imdsEndpoint.appendingPathComponent("metadata/identity/oauth2/token"), resolvingAgainstBaseURL: false)!
            components.queryItems = [URLQueryItem(name: "api-version", value: "2018-02-01"), URLQueryItem(name: "resource", value: resource)]
                + (clientID.map { [URLQueryItem(name: "client_id", value: $0)] } ?? [])
            request = AzureHTTPRequest(method: "GET", url: components.url!, headers: [("Metadata", "true"), ("Accept", "application/json")])
        }
        let response: AzureHTTPResponse
        let started = runtime.monotonicNow()
        do {
            response = try await transport.send(request)
        } catch {
            let detail = (error as? AzureTransportError)?.description ?? "\(type(of: error))"
            throw VaultError(.unavailable, "\(endpointName) at \(request.url.host ?? "?") did not answer: \(detail)")
        }
        return try decode(response, issuedAt: started)
    }

    var endpointName: String {
        if case .managedIdentity = source { return "managed identity endpoint (IMDS)" }
        return "token endpoint"
    }

    func decode(_ response: AzureHTTPResponse, issuedAt: Duration) throws(VaultError) -> AccessToken {
        guard response.status == 200 else { throw tokenError(response) }
        let body: TokenResponse
        do {
            body = try JSONDecoder().decode(TokenResponse.self, from: response.body)
        } catch {
            throw VaultError(.corrupt, "malformed token response from the \(endpointName): not a JSON token document")
        }
        guard !body.accessToken.isEmpty, body.expiresIn > 0 else {
            throw VaultError(.corrupt, "malformed token response from the \(endpointName): empty token or lifetime")
        }
        return AccessToken(token: RedactedSecret(body.accessToken), expiresAt: issuedAt + .seconds(body.expiresIn))
    }

    /// Maps an error answer; only the OAuth error code and the AADSTS number are kept, never the body.
    func tokenError(_ response: AzureHTTPResponse) -> VaultError {
        let error = try? JSONDecoder().decode(TokenErrorResponse.self, from: response.body)
        let aadsts = error?.errorDescription.flatMap { text in text.range(of: #"AADSTS[0-9]+"#, options: .regularExpression).map { String(text[$0]) } }
        var detail = "HTTP \(response.status)"
        if let code = error?.error { detail += " \(code)" }
        if let aadsts { detail += " \(aadsts)" }
        switch response.status {
        case 429:
            return VaultError(.throttled, "the \(endpointName) is throttling (\(detail))",
                              retryAfter: RetryAfter.parse(response.header("Retry-After"), now: runtime.wallNow()))
        case 500...599, 404, 410:
            return VaultError(.unavailable, "the \(endpointName) failed (\(detail))")
        default:
            return VaultError(.unauthorized, "the \(endpointName) refused our credentials (\(detail)); check tenant-id, client-id and the secret or certificate")
        }
    }

    static func checkTenant(configured: String, challenge: String?) throws(VaultError) {
        guard let challenge, challenge.lowercased() != configured.lowercased(), challenge.lowercased() != "common" else { return }
        throw VaultError(.unauthorized, "the vault belongs to tenant \(challenge) but vault.azure.tenant-id is \(configured); tokens are only requested from the configured tenant")
    }

    static func scope(_ resource: String) -> String { resource.trimmingSlash + "/.default" }

    static func form(_ url: URL, _ fields: [(String, String)]) -> AzureHTTPRequest {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let body = fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
        return AzureHTTPRequest(method: "POST", url: url,
                                headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")],
                                body: Data(body.utf8))
    }
}

/// `{"token_type":"Bearer","expires_in":3599,"access_token":"..."}`; IMDS sends `expires_in` as a string.
struct TokenResponse: Decodable {
    var accessToken: String
    var expiresIn: Int

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case expiresIn = "expires_in"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        accessToken = try container.decode(String.self, forKey: .accessToken)
        if let seconds = try? container.decode(Int.self, forKey: .expiresIn) {
            expiresIn = seconds
        } else if let text = try? container.decode(String.self, forKey: .expiresIn), let seconds = Int(text) {
            expiresIn = seconds
        } else {
            throw DecodingError.dataCorruptedError(forKey: .expiresIn, in: container, debugDescription: "expires_in is not a number")
        }
    }
}

/// `{"error":"invalid_client","error_description":"AADSTS7000215: ..."}`.
struct TokenErrorResponse: Decodable {
    var error: String?
    var errorDescription: String?

    enum CodingKeys: String, CodingKey {
        case error
        case errorDescription = "error_description"
    }
}
