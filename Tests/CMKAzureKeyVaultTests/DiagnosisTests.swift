@testable import CMKAzureKeyVault
import CMKCore
import Foundation
import Testing

/// Answers that look alarming but are not Key Vault's word for it (issue 14, defect 15): a 403
/// from the vault's network rules is access denied, never a disabled version; a 404 that is not
/// Key Vault's JSON `KeyNotFound` (a proxy's page, a wrong URL) is a misconfiguration, never a
/// missing or pulled key. The genuine answers come from the recorded Azure traffic.
@Suite("Azure Key Vault diagnoses")
struct DiagnosisTests {
    let key = try! KeyReference("data-at-rest-rsa2048")
    let version = "0123456789abcdef0123456789abcdef"

    /// 403 as Azure sends it when public network access is disabled (wording from
    /// https://github.com/microsoft/multimodal-ai/issues/171).
    static let forbiddenByConnection = AzureHTTPResponse.json(403, #"{"error":{"code":"Forbidden","message":"Public network access is disabled and request is not from a trusted service nor via an approved private link.\r\nCaller: appid=04b07795-8ddb-461a-bbee-02f9e1bf7b46;oid=eaadeb4c-a236-48a1-84f9-5c3685078b2c\r\nVault: kv-ac76373a;location=eastus2","innererror":{"code":"ForbiddenByConnection"}}}"#)

    /// What nginx (a proxy, or a web server at a wrong vault URL) answers for any path.
    static let proxyPage = AzureHTTPResponse(
        status: 404, headers: [("Content-Type", "text/html"), ("Server", "nginx")],
        body: Data("<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n</body>\r\n</html>\r\n".utf8))

    /// The recorded 404 `KeyNotFound` answers of Key Vault: `GET /keys/{name}/` and `GET /deletedkeys/{name}`.
    static func recordedNotFound() throws -> (key: AzureHTTPResponse, deletedKey: AzureHTTPResponse) {
        let folder = Recording.folder()
        let live = try Recording(url: folder.appendingPathComponent("js-error_404_get_nonexistent_key-7.6.json"))
        let crud = try Recording(url: folder.appendingPathComponent("py-key_crud_operations-7.6_vault.json"))
        let key = try #require(live.entries.first { $0.route == "get-key" && $0.status == 404 })
        let deleted = try #require(crud.entries.first { $0.route == "get-deleted-key" && $0.status == 404 })
        return (key.response, deleted.response)
    }

    @Test("403 ForbiddenByConnection is access denied by the network rules, never a disabled version")
    func forbiddenByConnection() async throws {
        let transport = ScriptedTransport()
        transport.enqueue("get-key", Self.forbiddenByConnection)
        transport.enqueue("list-versions", Self.forbiddenByConnection)
        transport.enqueue("unwrap", Self.forbiddenByConnection)
        let vault = try Fixtures.vault(transport)

        let snapshot = await expectVaultError(.forbidden) { _ = try await vault.snapshot(of: key) }
        #expect(snapshot?.reason.contains("network rules refuse this host") == true, "\(String(describing: snapshot))")
        #expect(snapshot?.category == .revoked)
        #expect(snapshot.map { KeyCondition.from($0) } == .accessDenied(VaultError(.forbidden, "")))
        let unwrap = await expectVaultError(.forbidden) {
            _ = try await vault.unwrap(Data(repeating: 1, count: 256), key: key, version: version, algorithm: .rsaOAEP256)
        }
        #expect(unwrap?.reason.contains("network rules refuse this host") == true, "\(String(describing: unwrap))")
        #expect(unwrap?.reason.contains("ForbiddenByConnection") == true)
        // A disabled version is still told by Key Vault's own inner code.
        transport.enqueue("unwrap", .json(403, #"{"error":{"code":"Forbidden","message":"Operation unwrapKey is not allowed on a disabled key.","innererror":{"code":"KeyDisabled"}}}"#))
        _ = await expectVaultError(.disabled) {
            _ = try await vault.unwrap(Data(repeating: 1, count: 256), key: key, version: version, algorithm: .rsaOAEP256)
        }
    }

    @Test("a 404 that is not Key Vault's KeyNotFound is a misconfiguration naming the URL, never a missing key")
    func foreignNotFound() async throws {
        let recorded = try Self.recordedNotFound()

        // Key Vault's own answers: the key is missing (the control case).
        let genuine = ScriptedTransport()
        genuine.enqueue("get-key", recorded.key)
        genuine.enqueue("get-deleted-key", recorded.deletedKey)
        #expect(try await Fixtures.vault(genuine).snapshot(of: key) == .missing(key))

        // A proxy's HTML page on every path: no missing key, no deleted-key lookup.
        let proxied = ScriptedTransport()
        proxied.enqueue("get-key", Self.proxyPage)
        let vault = try Fixtures.vault(proxied)
        let snapshot = await expectVaultError(.misconfigured) { _ = try await vault.snapshot(of: key) }
        #expect(snapshot?.reason.contains("https://sanitized.vault.azure.net") == true, "\(String(describing: snapshot))")
        #expect(snapshot?.reason.contains("not Key Vault's answer") == true)
        #expect(snapshot?.reason.contains("text/html") == true)
        #expect(snapshot?.reason.contains("<html>") == false, "the page itself is not echoed")
        #expect(snapshot.map { KeyCondition.from($0) } == .unreachable(VaultError(.misconfigured, "")))
        #expect(proxied.routes() == ["get-key"])

        // Key Vault's KeyNotFound for the key, then a foreign 404 for the deleted key: not "missing".
        let halfway = ScriptedTransport()
        halfway.enqueue("get-key", recorded.key)
        halfway.enqueue("get-deleted-key", Self.proxyPage)
        _ = await expectVaultError(.misconfigured) { _ = try await Fixtures.vault(halfway).snapshot(of: key) }

        // JSON, but another code than KeyNotFound (some other service at that URL).
        let other = ScriptedTransport()
        other.enqueue("get-key", .json(404, #"{"error":{"code":"NotFound","message":"Resource not found"}}"#))
        let otherError = await expectVaultError(.misconfigured) { _ = try await Fixtures.vault(other).snapshot(of: key) }
        #expect(otherError?.reason.contains("NotFound, not KeyNotFound") == true, "\(String(describing: otherError))")

        // Key-scoped calls: an unwrap answered by the proxy is not a deleted or missing key.
        let unwrap = ScriptedTransport()
        unwrap.enqueue("unwrap", Self.proxyPage)
        _ = await expectVaultError(.misconfigured) {
            _ = try await Fixtures.vault(unwrap).unwrap(Data(repeating: 1, count: 256), key: key, version: version, algorithm: .rsaOAEP256)
        }
        #expect(unwrap.routes() == ["unwrap"], "no deleted-key lookup after a foreign 404")
    }
}
