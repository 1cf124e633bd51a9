import AsyncHTTPClient
import CMKAzureTestServer
import Foundation
import NIOCore
import NIOSSL
import Testing

/// `cmkctl vault rotate-signing-key` against a running `cmk-vault`: the service reads the new key
/// file at its next request, publishes a planned key before it signs, and refuses every earlier
/// token at once after `--retire-now`.
@Suite(.serialized) struct SigningKeyRotationProcessTests {
    /// A token's `kid`, from its header.
    static func kid(_ token: String) throws -> String {
        let first = try #require(token.split(separator: ".").first)
        var segment = String(first).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while segment.count % 4 != 0 { segment += "=" }
        let bytes = try #require(Data(base64Encoded: segment))
        let header = try #require(try JSONSerialization.jsonObject(with: bytes) as? [String: Any])
        return try #require(header["kid"] as? String)
    }

    @Test("a planned rotation publishes the new key while the old one signs; --retire-now refuses earlier tokens at the next request; no restart")
    func rotationReachesTheRunningService() async throws {
        let vault = try VaultProcess.start()
        defer { vault.stop() }
        let tenant = try vault.tenantID()
        let admin = try vault.ctl(["admins", "add", "Rotation Tester", "--json"])
        let clientID = try #require(admin["clientId"] as? String), secret = try #require(admin["secret"] as? String)

        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(vault.ca.caCertificatePath)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        func send(_ path: String, form: String? = nil, bearer: String? = nil) async throws -> (status: Int, body: [String: Any], text: String) {
            var request = HTTPClientRequest(url: vault.url + path)
            if let form {
                request.method = .POST
                request.body = .bytes(ByteBuffer(string: form))
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            }
            if let bearer { request.headers.add(name: "Authorization", value: "Bearer " + bearer) }
            let response = try await client.execute(request, timeout: .seconds(20))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
            let body = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
            var header = response.headers.first(name: "WWW-Authenticate") ?? ""
            if !header.isEmpty { header = " WWW-Authenticate: " + header }
            return (Int(response.status.code), body, text + header)
        }
        func token() async throws -> String {
            let form = "grant_type=client_credentials&client_id=\(clientID)&client_secret=\(secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)&scope=\(vault.url.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)%2F.default"
            let answer = try await send("/\(tenant)/oauth2/v2.0/token", form: form)
            guard answer.status == 200, let token = answer.body["access_token"] as? String else { throw VaultTestError("token: \(answer.status) \(answer.text)") }
            return token
        }
        func published() async throws -> [String] {
            let answer = try await send("/\(tenant)/discovery/v2.0/keys")
            return ((answer.body["keys"] as? [[String: Any]]) ?? []).compactMap { $0["kid"] as? String }
        }
        do {
            let first = try await token()
            let firstKid = try Self.kid(first)
            #expect(try await published() == [firstKid])
            #expect(try await send("/v1.0/applications", bearer: first).status == 200)

            let planned = try vault.ctl(["vault", "rotate-signing-key", "--activate-in", "1h", "--json"])
            let plannedKid = try #require(planned["added"] as? String)
            #expect(try await published() == [firstKid, plannedKid])
            let second = try await token()
            #expect(try Self.kid(second) == firstKid, "the planned key must not sign before its activation")
            #expect(try await send("/v1.0/applications", bearer: first).status == 200)
            let listed = try ProcessRunner.run(try VaultProcess.binary("cmkctl"), ["vault", "signing-keys", "--vault-state", vault.state])
            #expect(listed.status == 0)
            let table = String(decoding: listed.output, as: UTF8.self)
            #expect(table.contains(firstKid + "  signing") && table.contains(plannedKid + "  next"), "\(table)")

            let refused = try ProcessRunner.run(try VaultProcess.binary("cmkctl"), ["vault", "rotate-signing-key", "--vault-state", vault.state])
            #expect(refused.status == 1 && refused.errors.contains("identity.rotation-pending"), "\(refused.status) \(refused.errors)")

            let retired = try vault.ctl(["vault", "rotate-signing-key", "--retire-now", "--json"])
            let newKid = try #require(retired["added"] as? String)
            #expect(Set(retired["removed"] as? [String] ?? []) == [firstKid, plannedKid])
            let stale = try await send("/v1.0/applications", bearer: first)
            #expect(stale.status == 401 && stale.text.contains("unknown-key"), "\(stale.status) \(stale.text)")
            #expect(try await published() == [newKid])
            let third = try await token()
            #expect(try Self.kid(third) == newKid)
            #expect(try await send("/v1.0/applications", bearer: third).status == 200)
            #expect(vault.log.contains("5d8e2b7f1c9a4d3e8b6f0a2c4e7d9b15"), "no reload line in the service's log:\n\(vault.log.suffix(2000))")
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}
