import AsyncHTTPClient
import CMKAzureTestServer
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// An HTTPS client for one ``VaultProcess`` that trusts its test CA: raw requests (the answer as
/// the replayer compares it), client-credentials tokens, and the service principal an
/// administrator makes through Graph's `addPassword`. `with` shuts the client down however the body ends.
struct VaultHTTPS {
    let vault: VaultProcess
    let http: HTTPClient

    static func with<T>(_ vault: VaultProcess, _ body: (VaultHTTPS) async throws -> T) async throws -> T {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(vault.ca.caCertificatePath)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        do {
            let result = try await body(VaultHTTPS(vault: vault, http: http))
            try await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    /// Sends a request; `url` is absolute or a path on the service.
    func send(_ method: HTTPMethod, _ url: String, query: String? = "api-version=7.6", json: Any? = nil, form: String? = nil,
              token: String? = nil, headers: [(String, String)] = []) async throws -> RecordingReplay.Reply {
        var target = url.hasPrefix("https://") ? url : vault.url + url
        if let query { target += (target.contains("?") ? "&" : "?") + query }
        var request = HTTPClientRequest(url: target)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
        } else if let form {
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: form))
        }
        let response = try await http.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 1 << 22)
        return RecordingReplay.Reply(status: Int(response.status.code), headers: response.headers.map { (name: $0.name, value: $0.value) },
                                     body: Data(buffer: body))
    }

    /// A token for the service's own API (`scope=<public-url>/.default`) with a client secret.
    func token(clientID: String, secret: String) async throws -> String {
        let encode = { (text: String) in text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }
        let form = "grant_type=client_credentials&client_id=\(encode(clientID))&client_secret=\(encode(secret))&scope=\(encode(vault.url + "/.default"))"
        let answer = try await send(.POST, "/\(try vault.tenantID())/oauth2/v2.0/token", query: nil, form: form)
        guard answer.status == 200, let token = Self.json(answer)["access_token"] as? String else {
            throw VaultTestError("token for \(clientID): \(answer.status) \(String(decoding: answer.body, as: UTF8.self).prefix(300))")
        }
        return token
    }

    /// A token of the customer's service principal: an administrator (`cmkctl admins add`) gives
    /// the application a key through `addPassword`.
    func servicePrincipalToken() async throws -> String {
        let admin = try vault.ctl(["admins", "add", "Replay Admin", "--json"])
        guard let adminID = admin["clientId"] as? String, let adminSecret = admin["secret"] as? String else {
            throw VaultTestError("cmkctl admins add printed no clientId and secret: \(admin)")
        }
        let adminToken = try await token(clientID: adminID, secret: adminSecret)
        let applications = try await send(.GET, "/v1.0/applications", query: nil, token: adminToken)
        guard let appID = ((Self.json(applications)["value"] as? [[String: Any]])?.first)?["appId"] as? String else {
            throw VaultTestError("GET /v1.0/applications: \(applications.status) \(String(decoding: applications.body, as: UTF8.self).prefix(300))")
        }
        let added = try await send(.POST, "/v1.0/applications/\(appID)/addPassword", query: nil,
                                   json: ["passwordCredential": ["displayName": "replay"]], token: adminToken)
        guard let secret = Self.json(added)["secretText"] as? String else {
            throw VaultTestError("addPassword: \(added.status) \(String(decoding: added.body, as: UTF8.self).prefix(300))")
        }
        return try await token(clientID: appID, secret: secret)
    }

    static func json(_ reply: RecordingReplay.Reply) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: reply.body)) as? [String: Any] ?? [:]
    }
}
