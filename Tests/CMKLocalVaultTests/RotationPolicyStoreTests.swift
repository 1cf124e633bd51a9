import CMKCore
@testable import CMKKeyVaultAPI
import Foundation
import Testing

@testable import CMKLocalVault

/// A key's rotation policy and warning markers in the local vault's key documents: written by the
/// keys API, read back by a vault opened again (a restart), kept through delete and recover; a
/// document written before them still reads.
@Suite struct RotationPolicyStoreTests {
    func send(_ api: KeyVaultAPI, _ method: String, _ path: String, _ body: String = "") -> (Int, [String: Any]) {
        let response = api.handle(ServerRequest(method: method, uri: path + "?api-version=7.6", headers: [], body: Data(body.utf8)))
        return (response.status, (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:])
    }

    func api(_ fixture: VaultFixture) throws -> KeyVaultAPI {
        KeyVaultAPI(configuration: .init(retentionDays: 7, purgeProtection: false, clock: fixture.clock, vaultName: "test"),
                    store: try fixture.open(retentionDays: 7, purgeProtection: false), vaultURL: { "https://vault.test" })
    }

    @Test("the policy and the markers survive a reopen, delete and recover; a rotation's expiry is stored; an older document reads without them")
    func persisted() async throws {
        try await withFixture { fixture in
            let policy = #"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P90D"}}"#
            var api = try api(fixture)
            #expect(send(api, "POST", "/keys/Policy-Key/create", #"{"kty":"RSA"}"#).0 == 200)
            let written = send(api, "PUT", "/keys/policy-key/rotationpolicy", policy)
            #expect(written.0 == 200)
            let first = try #require(try api.store.entry("policy-key").live?.latest.version)
            let due = LifecycleAction(kind: .nearExpiry, keyName: "Policy-Key", version: first, notBefore: nil, expires: nil)
            try api.markWarned(due)

            api = try self.api(fixture)  // a restart: a new vault over the same files
            #expect(RotationPolicyTests.json(send(api, "GET", "/keys/policy-key/rotationpolicy").1) == RotationPolicyTests.json(written.1))
            #expect(try api.store.entry("policy-key").live?.nearExpiryWarned == first)
            #expect(send(api, "DELETE", "/keys/policy-key").0 == 200)
            api = try self.api(fixture)
            #expect(send(api, "POST", "/deletedkeys/policy-key/recover").0 == 200)
            #expect(RotationPolicyTests.json(send(api, "GET", "/keys/policy-key/rotationpolicy").1) == RotationPolicyTests.json(written.1))

            let rotated = try #require(try api.rotate("Policy-Key", ifCurrent: first))
            api = try self.api(fixture)
            let stored = try #require(try api.store.entry("policy-key").live?.latest)
            #expect(stored.version == rotated.version && stored.expires == rotated.created + 90 * 86_400)

            // The file as an older build wrote it (none of the new members) still reads: no policy.
            let file = fixture.keyFile("policy-key")
            var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
            #expect(object["rotationPolicy"] != nil && object["nearExpiryWarned"] != nil)
            for member in ["rotationPolicy", "nearExpiryWarned", "expiredWarned"] { object[member] = nil }
            let document = try KeyDocument.decode(try JSONSerialization.data(withJSONObject: object), path: file.path, expectedName: "policy-key")
            #expect(document.rotationPolicy == nil && document.versions.count == 2)
        }
    }
}

enum RotationPolicyTests {
    static func json(_ object: Any) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }
}
