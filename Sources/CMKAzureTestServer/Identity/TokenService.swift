import CMKEntra
import CMKKeyVaultAPI
import Crypto
import Foundation
import Synchronization

/// The Microsoft identity platform as far as a daemon meets it: the v2.0 token endpoint
/// (client secret or signed client assertion), tenant discovery, instance discovery, and the IMDS
/// managed-identity endpoint. Tokens are opaque random strings, valid for the configured lifetime
/// by the injected clock; only their SHA-256 is kept.
final class TokenService: Sendable {
    struct IssuedToken: Sendable {
        var audience: String
        var expires: Date
    }

    enum Verdict: Equatable {
        case valid
        case missing, unknown, expired, wrongAudience
    }

    let configuration: AzureKeyVaultTestServer.Configuration
    private let tokens = Mutex<[Data: IssuedToken]>([:])
    let address: ServerAddress

    init(configuration: AzureKeyVaultTestServer.Configuration, address: ServerAddress) {
        self.configuration = configuration
        self.address = address
    }

    /// `https://127.0.0.1:PORT`, the authority host; set once the listener is bound.
    var authorityURL: String { address.url }

    var tokenEndpoint: String { "\(authorityURL)/\(configuration.tenantID)/oauth2/v2.0/token" }

    /// Checks an `Authorization` header value against the issued tokens.
    func verify(authorization: String?) -> Verdict {
        guard let authorization, authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else { return .missing }
        let token = String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        guard let issued = tokens.withLock({ $0[Self.digest(token)] }) else { return .unknown }
        if configuration.clock.now() >= issued.expires { return .expired }
        if issued.audience != configuration.vaultResource { return .wrongAudience }
        return .valid
    }

    /// Forgets every issued token (as if the tenant revoked them all).
    func revokeAll() { tokens.withLock { $0.removeAll() } }

    /// Issues a token for `audience`; returns it with its lifetime in whole seconds.
    func issue(audience: String) -> (token: String, lifetime: Int) {
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
        let token = KeyVaultBase64URL.encode(Data(bytes))
        let lifetime = Int(configuration.tokenLifetime.components.seconds)
        let expires = configuration.clock.now().addingTimeInterval(TimeInterval(lifetime))
        tokens.withLock { $0[Self.digest(token)] = IssuedToken(audience: audience, expires: expires) }
        return (token, lifetime)
    }

    static func digest(_ text: String) -> Data { Data(SHA256.hash(data: Data(text.utf8))) }

    /// Constant-time comparison of two secrets (by their digests).
    static func secretsMatch(_ given: String, _ expected: String) -> Bool {
        let lhs = digest(given), rhs = digest(expected)
        return zip(lhs, rhs).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    // MARK: - Routes

    /// Answers identity-platform paths; `nil` when the path is not one of them.
    func handle(_ request: ServerRequest) -> ServerResponse? {
        let segments = request.segments
        if segments.count == 4, segments[1] == "oauth2", segments[2] == "v2.0", segments[3] == "token" {
            guard request.method == "POST" else { return AADError.invalidRequest("The token endpoint accepts only POST.").response(status: 405) }
            return token(tenant: segments[0], body: request.body, authorization: request.header("Authorization"))
        }
        if segments.count == 4, segments[1] == "v2.0", segments[2] == ".well-known", segments[3] == "openid-configuration" {
            return openIDConfiguration(tenant: segments[0])
        }
        if segments == ["common", "discovery", "instance"] {
            return instanceDiscovery()
        }
        return nil
    }

    private func token(tenant: String, body: Data, authorization: String?) -> ServerResponse {
        guard tenant == configuration.tenantID else {
            return AADError.tenantNotFound(tenant).response(status: 400)
        }
        var form = FormEncoding.decode(String(decoding: body, as: UTF8.self))
        // client_secret_basic: `Authorization: Basic base64(client_id:client_secret)`, form-encoded parts.
        if let authorization, authorization.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6))).map({ String(decoding: $0, as: UTF8.self) }),
            let colon = decoded.firstIndex(of: ":")
        {
            let credentials = FormEncoding.decode("id=\(decoded[..<colon])&secret=\(decoded[decoded.index(after: colon)...])")
            form["client_id"] = form["client_id"] ?? credentials["id"]
            form["client_secret"] = form["client_secret"] ?? credentials["secret"]
        }
        guard let grantType = form["grant_type"] else { return AADError.missingParameter("grant_type").response(status: 400) }
        guard grantType == "client_credentials" else { return AADError.unsupportedGrantType(grantType).response(status: 400) }
        guard let clientID = form["client_id"] else { return AADError.missingParameter("client_id").response(status: 400) }
        guard clientID == configuration.clientID else { return AADError.unknownClient(clientID, tenant: tenant).response(status: 400) }
        guard let scope = form["scope"] else { return AADError.missingParameter("scope").response(status: 400) }

        if let assertion = form["client_assertion"] {
            guard form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" else {
                return AADError.invalidRequest("AADSTS700023: The client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.")
                    .response(status: 400)
            }
            if let failure = verifyAssertion(assertion, clientID: clientID) { return failure.response(status: 401) }
        } else if let secret = form["client_secret"] {
            guard Self.secretsMatch(secret, configuration.clientSecret) else { return AADError.invalidSecret(clientID).response(status: 401) }
        } else {
            return AADError.missingCredential().response(status: 401)
        }

        guard let audience = OpenIDConfiguration.resource(ofScope: scope) else {
            return AADError.invalidScope(scope).response(status: 400)
        }
        let issued = issue(audience: audience)
        return .json(200, TokenResponse(token_type: "Bearer", expires_in: issued.lifetime, ext_expires_in: issued.lifetime, access_token: issued.token))
    }

    private struct TokenResponse: Encodable {
        var token_type: String
        var expires_in: Int
        var ext_expires_in: Int
        var access_token: String
    }

    private func openIDConfiguration(tenant: String) -> ServerResponse {
        guard tenant == configuration.tenantID else { return AADError.tenantNotFound(tenant).response(status: 400) }
        return .json(200, OpenIDConfiguration.document(authority: authorityURL, tenant: tenant))
    }

    private func instanceDiscovery() -> ServerResponse {
        struct Discovery: Encodable {
            struct Metadata: Encodable {
                var preferred_network: String
                var preferred_cache: String
                var aliases: [String]
            }
            var tenant_discovery_endpoint: String
            var api_version = "1.1"
            var metadata: [Metadata]
            enum CodingKeys: String, CodingKey {
                case tenant_discovery_endpoint, metadata
                case api_version = "api-version"
            }
        }
        let host = authorityURL.replacingOccurrences(of: "https://", with: "")
        return .json(200, Discovery(
            tenant_discovery_endpoint: "\(authorityURL)/\(configuration.tenantID)/v2.0/.well-known/openid-configuration",
            metadata: [.init(preferred_network: host, preferred_cache: host, aliases: [host])]))
    }
}
