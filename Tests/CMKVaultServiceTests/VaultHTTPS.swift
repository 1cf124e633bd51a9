import CMKAzureTestServer
import CMKTestingHTTP
import Foundation
import NIOHTTP1

/// An HTTPS client for one ``VaultProcess`` that trusts its test CA (``TestHTTPSClient``, which
/// cmk-bench shares): raw requests (the answer as the replayer compares it), client-credentials
/// tokens, and the service principal an administrator makes through Graph's `addPassword`.
/// `with` shuts the client down however the body ends.
struct VaultHTTPS {
    let vault: VaultProcess
    let client: TestHTTPSClient

    static func with<T>(_ vault: VaultProcess, _ body: (VaultHTTPS) async throws -> T) async throws -> T {
        let client = TestHTTPSClient(baseURL: vault.url, caFile: vault.ca.caCertificatePath)
        do {
            let result = try await body(VaultHTTPS(vault: vault, client: client))
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// Sends a request; `url` is absolute or a path on the service.
    func send(_ method: HTTPMethod, _ url: String, query: String? = "api-version=7.6", json: Any? = nil, form: String? = nil,
              token: String? = nil, headers: [(String, String)] = []) async throws -> RecordingReplay.Reply {
        try await client.send(method, url, query: query, json: json, form: form, token: token, headers: headers)
    }

    /// A token for the service's own API (`scope=<public-url>/.default`) with a client secret.
    func token(clientID: String, secret: String) async throws -> String {
        try await client.token(tenant: try vault.tenantID(), clientID: clientID, secret: secret)
    }

    /// A token of the customer's service principal: an administrator (`cmkctl admins add`) gives
    /// the application a key through `addPassword`.
    func servicePrincipalToken() async throws -> String {
        let admin = try vault.ctl(["admins", "add", "Replay Admin", "--json"])
        guard let adminID = admin["clientId"] as? String, let adminSecret = admin["secret"] as? String else {
            throw VaultTestError("cmkctl admins add printed no clientId and secret: \(admin)")
        }
        return try await client.servicePrincipalToken(tenant: try vault.tenantID(), adminToken: try await token(clientID: adminID, secret: adminSecret),
                                                      displayName: "replay")
    }

    static func json(_ reply: RecordingReplay.Reply) -> [String: Any] { TestHTTPSClient.json(reply) }
}
