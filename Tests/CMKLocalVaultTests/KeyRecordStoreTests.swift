import CMKCore
import CMKKeyVaultAPI
import Foundation
import Testing

@testable import CMKLocalVault

/// The local vault as the keys API's store: what the API writes is a key document the daemon's
/// provider reads, and a purge leaves no opened private key behind in memory.
@Suite struct KeyRecordStoreTests {
    func api(_ vault: LocalVault) -> KeyVaultAPI {
        KeyVaultAPI(configuration: .init(retentionDays: 7, purgeProtection: false, clock: SystemWallClock(), vaultName: "test"),
                    store: vault, vaultURL: { "https://vault.test" })
    }

    func send(_ api: KeyVaultAPI, _ method: String, _ path: String, _ body: String = "") -> (Int, [String: Any]) {
        let response = api.handle(ServerRequest(method: method, uri: path + "?api-version=7.6", headers: [], body: Data(body.utf8)))
        return (response.status, (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:])
    }

    @Test("created through the API, unwrapped, then purged: the daemon's view follows, and the opened private key is forgotten")
    func purgeForgetsOpenedKeys() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cmk-store-" + UUID().uuidString)
        defer { try? FileManager.default.removeItem(at: directory) }
        let vault = try LocalVault(configuration: .init(directory: directory, masterKey: .bytes(.random(count: 32)), retentionDays: 7, purgeProtection: false))
        let api = api(vault)
        let created = send(api, "POST", "/keys/Root-Key/create", #"{"kty":"RSA-HSM","key_size":2048,"tags":{"owner":"sec"}}"#)
        #expect(created.0 == 200, "\(created)")
        let kid = try #require((created.1["key"] as? [String: Any])?["kid"] as? String)
        #expect(kid.hasPrefix("https://vault.test/keys/Root-Key/"), "the name keeps its case: \(kid)")
        let version = try #require(kid.split(separator: "/").last.map(String.init))

        // The daemon's provider sees the same key (the file carries the lower-case name) and wraps with it.
        guard case .present(let state) = try await vault.snapshot(of: try KeyReference("root-key")) else { throw CancellationError() }
        #expect(state.versions.map(\.id) == [version])
        let dek = SecretBytes.random(count: 32)
        let wrapped = try await vault.wrap(dek, key: try KeyReference("root-key"), version: version, algorithm: .rsaOAEP256)
        let unwrapped = send(api, "POST", "/keys/root-key/\(version)/unwrapkey", #"{"alg":"RSA-OAEP-256","value":"\#(KeyVaultBase64URL.encode(wrapped))"}"#)
        #expect(unwrapped.0 == 200 && (unwrapped.1["value"] as? String).flatMap(KeyVaultBase64URL.decode) == dek.withUnsafeBytes { Data($0) })
        #expect(vault.apiPrivateKeys.withLock { $0.keys.contains { $0.hasPrefix("root-key/") } }, "the unwrap opened the key")

        #expect(send(api, "DELETE", "/keys/root-key").0 == 200)
        #expect(send(api, "DELETE", "/deletedkeys/root-key").0 == 204)
        #expect(vault.apiPrivateKeys.withLock { $0.isEmpty }, "a purged key's opened private key stays in memory")
        guard case .missing = try await vault.snapshot(of: try KeyReference("root-key")) else { throw CancellationError() }
    }
}
