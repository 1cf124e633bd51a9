import Foundation
import Glibc
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

@Suite("Azure test server: configuration")
struct ConfigurationTests {
    @Test("the client secret never appears when a configuration is printed")
    func redacted() {
        let configuration = AzureKeyVaultTestServer.Configuration(clientSecret: "very-secret-value")
        for text in ["\(configuration)", String(reflecting: configuration)] {
            #expect(!text.contains("very-secret-value"))
            #expect(text.contains("<redacted>"))
        }
    }
}

@Suite("Azure test server: scoped start")
struct ScopedServerTests {
    @Test("withServer makes a certificate authority when given none, and removes it and stops the server afterwards")
    func scoped() async throws {
        let (directory, url) = try await AzureKeyVaultTestServer.withServer(.init(clientSecret: "s")) { server, ca in
            #expect(FileManager.default.fileExists(atPath: ca.caCertificatePath))
            #expect(!FileManager.default.fileExists(atPath: ca.directory + "/ca.key"), "the CA key must not outlive signing")
            #expect(Socket.connect(port: Int(server.vaultURL.split(separator: ":").last ?? "") ?? 0), "the listener should be open")
            return (ca.directory, server.vaultURL)
        }
        #expect(!FileManager.default.fileExists(atPath: directory))
        let port = try #require(Int(url.split(separator: ":").last ?? ""))
        #expect(Socket.connect(port: port) == false, "the listener should be closed")
    }
}

/// A plain TCP connect to 127.0.0.1, to see whether a port still listens.
enum Socket {
    static func connect(port: Int) -> Bool {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
