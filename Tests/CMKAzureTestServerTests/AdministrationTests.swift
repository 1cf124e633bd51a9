import Foundation
import Testing

@testable import CMKAzureTestServer

/// The direct administration API tests use to set up and change vault state.
@Suite("Azure test server: administration without HTTP")
struct AdministrationTests {
    @Test("create, rotate, disable, delete, recover and purge act on the same state the API serves, outside the request log")
    func administration() async throws {
        try await Harness.with { harness in
            let server = harness.server
            let first = try server.createKey("admin", size: 3072)
            let second = try server.rotateKey("admin")
            #expect(first.count == 32 && second.count == 32 && first != second)
            try server.updateVersion("admin", version: first, enabled: false, expires: harness.clock.now().addingTimeInterval(3600))
            #expect(server.requests.isEmpty)
            let token = try await harness.token()
            let version = try await harness.send(.GET, "/keys/admin/\(first)", token: token)
            #expect(version.json.attributes["enabled"] as? Bool == false)
            #expect(version.json.attributes["key_size"] as? Int == 3072)
            #expect(version.json.attributes["exp"] as? Int == Int(harness.clock.now().timeIntervalSince1970) + 3600)
            #expect(try await harness.send(.GET, "/keys/admin/", token: token).json.version == second)
            try server.deleteKey("admin")
            #expect(try await harness.send(.GET, "/keys/admin/", token: token).status == 404)
            #expect(throws: TestServerError.self) { try server.purgeKey("admin") }
            try server.recoverKey("admin")
            #expect(try await harness.send(.GET, "/keys/admin/", token: token).status == 200)
            #expect(throws: TestServerError.self) { try server.rotateKey("absent") }
        }
    }
}
