import AsyncHTTPClient
import CMKAzureTestServer
import CMKTesting
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// A running emulator with its certificate authority, a manual clock and an HTTPS client that
/// trusts the test CA. `Harness.with { … }` tears everything down however the body ends.
struct Harness {
    static let secret = "emulator-client-secret-\(UUID().uuidString)"

    let ca: TestCertificateAuthority
    let server: AzureKeyVaultTestServer
    let clock: ManualClock
    let http: HTTPClient

    static func with<T>(
        _ configure: (inout AzureKeyVaultTestServer.Configuration) -> Void = { _ in },
        _ body: (Harness) async throws -> T
    ) async throws -> T {
        let clock = ManualClock(Date())
        let ca = try TestCertificateAuthority.make()
        defer { ca.remove() }
        var configuration = AzureKeyVaultTestServer.Configuration(clientSecret: secret, clientCertificate: ca.client, clock: clock)
        configure(&configuration)
        return try await AzureKeyVaultTestServer.withServer(configuration, certificateAuthority: ca) { server, ca in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(ca.caCertificatePath)
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            do {
                let result = try await body(Harness(ca: ca, server: server, clock: clock, http: http))
                try await http.shutdown()
                return result
            } catch {
                try? await http.shutdown()
                throw error
            }
        }
    }

    /// An answer: status, headers and the body parsed as JSON when it is JSON.
    struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: Data

        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
        var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }
    }

    /// Sends a request; `url` is absolute or a path on the vault.
    func send(
        _ method: HTTPMethod, _ url: String, query: String? = "api-version=7.6", json: Any? = nil, form: [String: String]? = nil,
        token: String? = nil, headers extra: [(String, String)] = [], client: HTTPClient? = nil
    ) async throws -> Reply {
        var target = url.hasPrefix("http") ? url : server.vaultURL + url
        if let query { target += (target.contains("?") ? "&" : "?") + query }
        var request = HTTPClientRequest(url: target)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
        } else if let form {
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            let text = form.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
            request.body = .bytes(ByteBuffer(string: text))
        }
        let response = try await (client ?? http).execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 1 << 22)
        return Reply(status: Int(response.status.code), headers: response.headers, body: Data(body.readableBytesView))
    }

    /// A vault token from the token endpoint with the client secret.
    func token() async throws -> String {
        let reply = try await send(.POST, server.tokenEndpoint, query: nil, form: [
            "grant_type": "client_credentials", "client_id": server.configuration.clientID, "client_secret": Self.secret,
            "scope": "https://vault.azure.net/.default",
        ])
        guard reply.status == 200, let token = reply.json["access_token"] as? String else {
            throw HarnessError("token endpoint answered \(reply.status): \(String(decoding: reply.body, as: UTF8.self))")
        }
        return token
    }

    /// Creates an RSA key and returns its bundle.
    @discardableResult
    func createKey(_ name: String, token: String, body: [String: Any] = ["kty": "RSA"]) async throws -> [String: Any] {
        let reply = try await send(.POST, "/keys/\(name)/create", json: body, token: token)
        guard reply.status == 200 else { throw HarnessError("create \(name) answered \(reply.status): \(String(decoding: reply.body, as: UTF8.self))") }
        return reply.json
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension [String: Any] {
    /// `kid` of a key bundle.
    var kid: String { ((self["key"] as? [String: Any])?["kid"] as? String) ?? "" }
    /// The version (last path segment of the kid).
    var version: String { String(kid.split(separator: "/").last ?? "") }
    var attributes: [String: Any] { self["attributes"] as? [String: Any] ?? [:] }
}
