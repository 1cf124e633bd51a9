import AsyncHTTPClient
import CMKAzureTestServer
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// An HTTPS client for a test service (cmk-vault, the Azure test server) that trusts only the
/// run's test CA: raw requests with a bearer token, a JSON or form body; client-credentials tokens;
/// and the customer's service principal an administrator makes through Graph's `addPassword`.
/// Shared by the tests and the benchmark. ``shutdown()`` when done.
public struct TestHTTPSClient: Sendable {
    /// The service's base URL (`https://127.0.0.1:PORT`): a path in ``send(_:_:query:json:form:token:headers:timeout:limit:)`` is taken from it.
    public let baseURL: String
    public let http: HTTPClient

    /// What went wrong, in words for a test's issue or the benchmark's error line.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// A client trusting `caFile` only; `configure` adjusts the rest (HTTP version, pool size).
    public init(baseURL: String, caFile: String, configure: (inout HTTPClient.Configuration) -> Void = { _ in }) {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(caFile)
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configure(&configuration)
        self.baseURL = baseURL
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async throws { try await http.shutdown() }

    /// Sends a request; `url` is absolute or a path on the service. Any status is returned.
    public func send(_ method: HTTPMethod, _ url: String, query: String? = "api-version=7.6", json: Any? = nil, form: String? = nil,
                     token: String? = nil, headers: [(String, String)] = [], timeout: TimeAmount = .seconds(60),
                     limit: Int = 1 << 22) async throws -> RecordingReplay.Reply {
        var target = url.hasPrefix("https://") ? url : baseURL + url
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
        let response = try await http.execute(request, timeout: timeout)
        let body = try await response.body.collect(upTo: limit)
        return RecordingReplay.Reply(status: Int(response.status.code), headers: response.headers.map { (name: $0.name, value: $0.value) },
                                     body: Data(body.readableBytesView))
    }

    /// The answer's body as a JSON object (empty when it is none).
    public static func json(_ reply: RecordingReplay.Reply) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: reply.body)) as? [String: Any] ?? [:]
    }

    /// A token for the service's own API (`scope=<baseURL>/.default`) from `tenant`'s token endpoint with a client secret.
    public func token(tenant: String, clientID: String, secret: String) async throws -> String {
        let encode = { (text: String) in text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }
        let form = "grant_type=client_credentials&client_id=\(encode(clientID))&client_secret=\(encode(secret))&scope=\(encode(baseURL + "/.default"))"
        let answer = try await send(.POST, "/\(tenant)/oauth2/v2.0/token", query: nil, form: form)
        guard answer.status == 200, let token = Self.json(answer)["access_token"] as? String else {
            throw Failure(description: "token for \(clientID): \(answer.status) \(String(decoding: answer.body, as: UTF8.self).prefix(300))")
        }
        return token
    }

    /// A token of the customer's service principal: the administrator whose token is `adminToken`
    /// gives the application a new key through `addPassword` (named `displayName`).
    public func servicePrincipalToken(tenant: String, adminToken: String, displayName: String) async throws -> String {
        let applications = try await send(.GET, "/v1.0/applications", query: nil, token: adminToken)
        guard let appID = ((Self.json(applications)["value"] as? [[String: Any]])?.first)?["appId"] as? String else {
            throw Failure(description: "GET /v1.0/applications: \(applications.status) \(String(decoding: applications.body, as: UTF8.self).prefix(300))")
        }
        let added = try await send(.POST, "/v1.0/applications/\(appID)/addPassword", query: nil,
                                   json: ["passwordCredential": ["displayName": displayName]], token: adminToken)
        guard let secret = Self.json(added)["secretText"] as? String else {
            throw Failure(description: "addPassword: \(added.status) \(String(decoding: added.body, as: UTF8.self).prefix(300))")
        }
        return try await token(tenant: tenant, clientID: appID, secret: secret)
    }
}
