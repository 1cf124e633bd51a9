import AsyncHTTPClient
import CMKAzureTestServer
import CMKConfiguration
import CMKIdentity
import CMKVaultLog
@testable import CMKVaultService
import Foundation
import Logging
import NIOCore
import NIOSSL
import Testing

/// The real `cmk-vault` whose security log cannot record (its state directory on a small tmpfs,
/// filled up, in a private mount namespace): no change is made and no token handed out without
/// its record. Needs root (`unshare --mount`), as CI has.
@Suite("cmk-vault fails closed when its security log cannot record", .serialized)
struct FailClosedTests {
    /// A JSON request to the service: status and body object.
    struct Client {
        let http: HTTPClient
        let url: String

        func send(_ path: String, post: Bool = false, json: [String: Any]? = nil, form: String? = nil, token: String? = nil) async throws -> (Int, [String: Any]) {
            var request = HTTPClientRequest(url: url + path)
            if post { request.method = .POST }
            if let json {
                request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
                request.headers.add(name: "Content-Type", value: "application/json")
            }
            if let form {
                request.body = .bytes(ByteBuffer(string: form))
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            }
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            let response = try await http.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 20)
            let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
            return (Int(response.status.code), object)
        }
    }

    static func errorMessage(_ body: [String: Any]) -> String { (body["error"] as? [String: Any])?["message"] as? String ?? "\(body)" }

    @Test("a full state disk: token, addPassword, removePassword and replaceSecret answer 503 saying nothing was changed, and nothing was; a wrong secret is still refused; the journal names each unrecorded operation; with space back, the same service records and changes again")
    func fullDisk() async throws {
        let vault = try VaultProcess.start(stateTmpfsSize: "8m")
        defer { vault.stop() }
        let admin = try vault.ctl(["admins", "add", "Full Disk", "--json"])
        let adminID = try #require(admin["clientId"] as? String), secret = try #require(admin["secret"] as? String)
        let tenant = try vault.tenantID()
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(vault.ca.caCertificatePath)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        do {
            try await check(vault, Client(http: http, url: vault.url), adminID: adminID, secret: secret, tenant: tenant)
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    func check(_ vault: VaultProcess, _ client: Client, adminID: String, secret: String, tenant: String) async throws {
        let tokenPath = "/\(tenant)/oauth2/v2.0/token"
        func tokenForm(_ secret: String) -> String {
            let encoded = secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? secret
            return "grant_type=client_credentials&client_id=\(adminID)&client_secret=\(encoded)&scope=\(vault.url)/.default"
        }

        // Before: a token (its credential's last use is now written, so the next sign-in within a
        // minute writes nothing to identity.sqlite) and a key to try to revoke.
        let first = try await client.send(tokenPath, post: true, form: tokenForm(secret))
        try #require(first.0 == 200, "\(first)")
        let token = try #require(first.1["access_token"] as? String)
        let applications = try await client.send("/v1.0/applications", token: token)
        let appID = try #require(((applications.1["value"] as? [[String: Any]])?.first?["appId"]) as? String, "\(applications)")
        let kept = try await client.send("/v1.0/applications/\(appID)/addPassword", post: true, json: ["passwordCredential": ["displayName": "kept"]], token: token)
        try #require(kept.0 == 200, "\(kept)")
        let keptID = try #require(kept.1["keyId"] as? String)

        let fill = try vault.inside(["/bin/sh", "-c", "dd if=/dev/zero of=\"$0/fill\" bs=4k 2> /dev/null; df -k \"$0\"", vault.state])
        let df = String(decoding: fill.output, as: UTF8.self)
        try #require(df.contains(" 100% "), "the state tmpfs is not full: \(df) \(fill.errors)")

        let issued = try await client.send(tokenPath, post: true, form: tokenForm(secret))
        #expect(issued.0 == 503, "a token whose record cannot be written is not handed out: \(issued)")
        #expect(issued.1["access_token"] == nil)
        #expect(issued.1["error"] as? String == "temporarily_unavailable", "the identity platform's error shape: \(issued.1)")
        let description = issued.1["error_description"] as? String ?? ""
        #expect(description.contains("security log cannot record token-issued") && description.contains("nothing was changed"), "\(description)")

        let added = try await client.send("/v1.0/applications/\(appID)/addPassword", post: true,
                                          json: ["passwordCredential": ["displayName": "while-full"]], token: token)
        #expect(added.0 == 503, "\(added)")
        #expect((added.1["error"] as? [String: Any])?["code"] as? String == "SecurityLogUnavailable", "\(added.1)")
        #expect(Self.errorMessage(added.1).contains("cannot record credential-added") && Self.errorMessage(added.1).contains("nothing was changed"),
                "\(added.1)")
        #expect(added.1["secretText"] == nil)
        let removed = try await client.send("/v1.0/applications/\(appID)/removePassword", post: true, json: ["keyId": keptID], token: token)
        #expect(removed.0 == 503 && Self.errorMessage(removed.1).contains("credential-revoked"), "\(removed)")
        let replaced = try await client.send("/v1.0/me/replaceSecret", post: true, token: token)
        #expect(replaced.0 == 503 && Self.errorMessage(replaced.1).contains("administrator-secret-replaced"), "\(replaced)")
        #expect(replaced.1["secretText"] == nil)
        // Refusals stay refusals.
        let wrong = try await client.send(tokenPath, post: true, form: tokenForm("not-the-secret"))
        #expect(wrong.0 == 401 && wrong.1["access_token"] == nil, "\(wrong)")

        let freed = try vault.inside(["/bin/rm", "-f", vault.state + "/fill"])
        try #require(freed.status == 0, "\(freed.errors)")

        // Nothing changed: the one key is still listed, the old secret still signs in.
        let listed = try await client.send("/v1.0/applications/\(appID)", token: token)
        let keys = (listed.1["passwordCredentials"] as? [[String: Any]]) ?? []
        #expect(keys.compactMap { $0["displayName"] as? String } == ["kept"], "\(listed)")
        #expect(keys.compactMap { $0["keyId"] as? String } == [keptID])
        let again = try await client.send(tokenPath, post: true, form: tokenForm(secret))
        #expect(again.0 == 200, "the administrator's secret was not replaced: \(again)")

        // The log holds what happened and nothing that did not (the refused sign-in could not be
        // recorded either: the journal has it).
        let records = try await client.send("/v1.0/securityLogs/records", token: token)
        let operations = ((records.1["value"] as? [[String: Any]]) ?? []).compactMap { ($0["record"] as? [String: Any])?["operation"] as? String }
        #expect(operations == ["token-issued", "credential-added", "token-issued"], "\(records)")
        // The record of the kept key names it by the id the listing shows (chosen before the key existed).
        let items = (records.1["value"] as? [[String: Any]]) ?? []
        let addedRecord: [String: Any]? = items.compactMap { $0["record"] as? [String: Any] }.first { $0["operation"] as? String == "credential-added" }
        let addedDetails = addedRecord?["details"] as? [String: String]
        #expect(addedDetails?["keyId"] == keptID, "\(String(describing: addedRecord))")

        // The journal names every event the log could not record.
        let journal = vault.log.split(separator: "\n").filter { $0.contains("The security log could not record an event.") }
        for operation in ["token-issued", "credential-added", "credential-revoked", "administrator-secret-replaced", "authentication-failed"] {
            #expect(journal.contains { $0.contains("cmk_operation=\(operation)") && $0.contains("message_id=7b3e9d1c5a2f4e8b9c6d0a3f1e7b5d92") },
                    "no recordFailed line for \(operation):\n\(journal.joined(separator: "\n"))")
        }

        // With space back the same process records and changes again.
        let after = try await client.send("/v1.0/applications/\(appID)/addPassword", post: true, json: ["passwordCredential": ["displayName": "after"]], token: token)
        #expect(after.0 == 200, "\(after)")
    }
}

/// The follow-up record of a change that fails after its record was appended, on the real
/// routes, store and security log in a scratch state directory (no HTTP: the race is made
/// deterministic by creating the same name between the record and the change).
@Suite("cmk-vault: a change that fails after its record")
struct FollowUpRecordTests {
    @Test("the store refuses the change after credential-added was appended: a credential-added-failed record names that record and the store's code, the answer is 409, and no key was added twice")
    func failedAfterRecord() async throws {
        let root = NSTemporaryDirectory() + "cmk-vault-followup-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let configuration = try VaultServiceConfiguration.parse(yaml: """
            state-directory: \(root)/state
            public-url: https://127.0.0.1:8443
            listen: 127.0.0.1:8443
            tls: {certificate-file: \(root)/none.crt, key-file: \(root)/none.key}
            """, file: root + "/cmk-vault.yaml", environment: [:])
        let routes = try VaultServer(configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }).makeRoutes()
        let log = try #require(routes.log)
        let event = ServiceEvent.credentialAdded(by: nil, keyID: IdentityStore.newKeyID(), name: "hsm-1", end: nil, address: "192.0.2.7")
        var changed = false
        let error = await #expect(throws: ServiceError.self) {
            try await routes.recordedChange(event) {
                // A concurrent request took the name after this one's check and record.
                _ = try routes.store.addServicePrincipalCredential(displayName: "hsm-1")
                changed = true
                return try routes.store.addServicePrincipalCredential(displayName: "hsm-1")
            }
        }
        #expect(changed)
        #expect(error?.status == .conflict, "\(String(describing: error))")
        let records = try log.records(.init(limit: 10)).leaves.map { try SecurityLogRecord(leaf: $0.leaf) }
        #expect(records.map(\.operation) == ["credential-added", "credential-added-failed"])
        #expect(records.last?.details["record"] == "0")
        #expect(records.last?.details["reason"] == "identity.duplicate-name")
        #expect(records.last?.details["displayName"] == "hsm-1" && records.last?.address == "192.0.2.7")
        #expect(try routes.store.servicePrincipalCredentials().map(\.displayName) == ["hsm-1"])

        // A change that succeeds has its record and nothing after it.
        try await routes.recordedChange(.credentialRevoked(by: nil, keyID: try routes.store.servicePrincipalCredentials()[0].keyId, address: "192.0.2.7")) {
            try routes.store.revokeServicePrincipalCredential(keyID: try routes.store.servicePrincipalCredentials()[0].keyId)
        }
        #expect(try log.records(.init(limit: 10)).leaves.map { try SecurityLogRecord(leaf: $0.leaf).operation }
                == ["credential-added", "credential-added-failed", "credential-revoked"])
    }
}
