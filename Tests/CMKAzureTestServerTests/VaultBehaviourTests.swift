import CMKKeyVaultAPI
import CryptoExtras
import Foundation
import Testing

@testable import CMKAzureTestServer

/// The keys API's rules: challenge, api-versions, versions, paging, disabled/expired keys, soft
/// delete, recovery, purge protection and retention — each with the status and error Azure gives.
@Suite("Azure test server: keys API")
struct VaultBehaviourTests {
    @Test("a request without a token gets the 401 challenge naming the tenant and vault resource")
    func challenge() async throws {
        try await Harness.with { harness in
            let reply = try await harness.send(.GET, "/keys/k/")
            #expect(reply.status == 401)
            #expect(reply.errorCode == "Unauthorized")
            #expect(reply.errorMessage?.hasPrefix("AKV10000: Request is missing a Bearer") == true)
            let tenant = harness.server.configuration.tenantID
            #expect(reply.headers["WWW-Authenticate"].first == "Bearer authorization=\"\(harness.server.authorityHost)/\(tenant)\", resource=\"https://vault.azure.net\"")
            let forged = try await harness.send(.GET, "/keys/k/", token: "not-a-token")
            #expect(forged.status == 401)
            #expect(forged.headers["WWW-Authenticate"].first?.hasPrefix("Bearer authorization=") == true)
        }
    }

    @Test("api-version is required and only 7.4, 7.5, 7.6 and 2025-07-01 are accepted", arguments: ["7.4", "7.5", "7.6", "2025-07-01"])
    func acceptedAPIVersions(_ version: String) async throws {
        try await Harness.with { harness in
            let token = try await harness.token()
            #expect(try await harness.send(.GET, "/keys/absent/", query: "api-version=\(version)", token: token).status == 404)
        }
    }

    @Test("an unknown or missing api-version gets 400 BadParameter")
    func refusedAPIVersions() async throws {
        try await Harness.with { harness in
            let token = try await harness.token()
            let unknown = try await harness.send(.GET, "/keys/k/", query: "api-version=7.9", token: token)
            #expect(unknown.status == 400)
            #expect(unknown.errorCode == "BadParameter")
            #expect(unknown.errorMessage == "The specified version (7.9) is not recognized. Consider using the latest supported version (2025-07-01).")
            let missing = try await harness.send(.GET, "/keys/k/", query: nil, token: token)
            #expect(missing.status == 400)
        }
    }

    @Test("create, rotate, get latest and a version; versions are 32 hex digits and kids name the vault")
    func createRotateGet() async throws {
        try await Harness.with { harness in
            let token = try await harness.token()
            let first = try await harness.createKey(
                "root", token: token,
                body: ["kty": "RSA-HSM", "key_size": 3072, "key_ops": ["wrapKey", "unwrapKey"], "tags": ["team": "storage"], "attributes": ["enabled": true]])
            #expect(first.kid.hasPrefix("\(harness.server.vaultURL)/keys/root/"))
            #expect(first.version.count == 32 && first.version.allSatisfy(\.isHexDigit))
            let key = try #require(first["key"] as? [String: Any])
            #expect(key["kty"] as? String == "RSA-HSM")
            #expect(key["key_ops"] as? [String] == ["wrapKey", "unwrapKey"])
            #expect(KeyVaultBase64URL.decode(key["n"] as? String ?? "")?.count == 384)
            #expect(key["e"] as? String == "AQAB")
            #expect(first.attributes["key_size"] as? Int == 3072)
            #expect(first.attributes["recoveryLevel"] as? String == "Recoverable")
            #expect(first.attributes["recoverableDays"] as? Int == 90)
            #expect(first["tags"] as? [String: String] == ["team": "storage"])

            let rotated = try await harness.send(.POST, "/keys/root/rotate", token: token)
            #expect(rotated.status == 200)
            #expect(rotated.json.version != first.version)
            #expect(rotated.json["tags"] as? [String: String] == ["team": "storage"])
            for path in ["/keys/root", "/keys/root/"] {
                #expect(try await harness.send(.GET, path, token: token).json.version == rotated.json.version)
            }
            #expect(try await harness.send(.GET, "/keys/root/\(first.version)", token: token).json.version == first.version)
            // Identifiers are case-insensitive; answers keep the name as created.
            let shouted = try await harness.send(.GET, "/keys/ROOT/\(first.version.uppercased())", token: token)
            #expect(shouted.status == 200 && shouted.json.kid == first.kid)
            let missing = try await harness.send(.GET, "/keys/root/\(String(repeating: "0", count: 32))", token: token)
            #expect(missing.status == 404)
            #expect(missing.errorCode == "KeyNotFound")
        }
    }

    @Test("bad create requests get 400 naming the field and accepted values")
    func badCreate() async throws {
        try await Harness.with { harness in
            let token = try await harness.token()
            let size = try await harness.send(.POST, "/keys/k/create", json: ["kty": "RSA", "key_size": 1024], token: token)
            #expect(size.status == 400 && size.errorMessage?.contains("2048, 3072, 4096") == true)
            let kty = try await harness.send(.POST, "/keys/k/create", json: ["kty": "oct"], token: token)
            #expect(kty.status == 400 && kty.errorMessage?.contains("RSA, RSA-HSM") == true)
            let typed = try await harness.send(.POST, "/keys/k/create", json: ["kty": "RSA", "key_size": "big"], token: token)
            #expect(typed.status == 400 && typed.errorMessage?.contains("key_size") == true)
            let name = try await harness.send(.POST, "/keys/bad_name/create", json: ["kty": "RSA"], token: token)
            #expect(name.status == 400 && name.errorMessage?.contains("invalid name") == true)
        }
    }

    @Test("versions are listed in pages of maxresults with a nextLink carrying $skiptoken; the last page has nextLink null")
    func paging() async throws {
        try await Harness.with { harness in
            let token = try await harness.token()
            try await harness.createKey("paged", token: token)
            for _ in 0..<4 { _ = try await harness.send(.POST, "/keys/paged/rotate", token: token) }
            var link: String? = harness.server.vaultURL + "/keys/paged/versions?api-version=7.6&maxresults=2"
            var seen: [String] = []
            var pages = 0
            while let next = link {
                let reply = try await harness.send(.GET, next, query: nil, token: token)
                #expect(reply.status == 200)
                let items = try #require(reply.json["value"] as? [[String: Any]])
                seen += items.compactMap { ($0["kid"] as? String)?.split(separator: "/").last.map(String.init) }
                #expect(reply.json.keys.contains("nextLink"))
                link = reply.json["nextLink"] as? String
                if let link { #expect(link.contains("$skiptoken=") && link.contains("maxresults=2")) }
                pages += 1
            }
            #expect(pages == 3)
            #expect(Set(seen).count == 5)
            let tooMany = try await harness.send(.GET, "/keys/paged/versions", query: "api-version=7.6&maxresults=26", token: token)
            #expect(tooMany.status == 400)
        }
    }

    @Test("PATCH updates a version's enabled, nbf, exp, key_ops and tags and bumps updated")
    func update() async throws {
        try await Harness.with { harness in
            let token = try await harness.token()
            let created = try await harness.createKey("upd", token: token)
            harness.clock.advance(by: .seconds(5))
            let reply = try await harness.send(
                .PATCH, "/keys/upd/\(created.version)",
                json: ["key_ops": ["unwrapKey"], "attributes": ["enabled": false, "exp": 4_102_444_800, "nbf": 1_700_000_000], "tags": ["a": "b"]],
                token: token)
            #expect(reply.status == 200)
            #expect(reply.json.attributes["enabled"] as? Bool == false)
            #expect(reply.json.attributes["exp"] as? Int == 4_102_444_800)
            #expect(reply.json.attributes["nbf"] as? Int == 1_700_000_000)
            #expect(reply.json.attributes["updated"] as? Int == (created.attributes["created"] as? Int ?? 0) + 5)
            #expect((reply.json["key"] as? [String: Any])?["key_ops"] as? [String] == ["unwrapKey"])
            #expect(reply.json["tags"] as? [String: String] == ["a": "b"])
            let latest = try await harness.send(.PATCH, "/keys/upd/", json: ["attributes": ["enabled": true]], token: token)
            #expect(latest.json.attributes["enabled"] as? Bool == true)
        }
    }

    @Test("wrap and unwrap with RSA-OAEP-256, RSA-OAEP and RSA1_5 round-trip; local wrap with the public JWK unwraps in the vault",
          arguments: ["RSA-OAEP-256", "RSA-OAEP", "RSA1_5"])
    func wrapUnwrap(_ alg: String) async throws {
        try await Harness.with { harness in
            let token = try await harness.token()
            let key = try await harness.createKey("wrap", token: token)
            let dek = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
            let wrapped = try await harness.send(.POST, "/keys/wrap/\(key.version)/wrapkey", json: ["alg": alg, "value": KeyVaultBase64URL.encode(dek)], token: token)
            #expect(wrapped.status == 200)
            #expect(wrapped.json["kid"] as? String == key.kid)
            let value = try #require(wrapped.json["value"] as? String)
            let unwrapped = try await harness.send(.POST, "/keys/wrap/\(key.version)/unwrapkey", json: ["alg": alg, "value": value], token: token)
            #expect(KeyVaultBase64URL.decode(unwrapped.json["value"] as? String ?? "") == dek)

            if alg == "RSA-OAEP-256" {
                let jwk = try #require(key["key"] as? [String: Any])
                let publicKey = try _RSA.Encryption.PublicKey(
                    n: try #require(KeyVaultBase64URL.decode(jwk["n"] as? String ?? "")), e: try #require(KeyVaultBase64URL.decode(jwk["e"] as? String ?? "")))
                let local = try publicKey.encrypt(dek, padding: .PKCS1_OAEP_SHA256)
                let remote = try await harness.send(.POST, "/keys/wrap//unwrapkey", json: ["alg": alg, "value": KeyVaultBase64URL.encode(local)], token: token)
                #expect(KeyVaultBase64URL.decode(remote.json["value"] as? String ?? "") == dek)
                var tampered = local
                tampered[0] ^= 1
                let bad = try await harness.send(.POST, "/keys/wrap//unwrapkey", json: ["alg": alg, "value": KeyVaultBase64URL.encode(tampered)], token: token)
                #expect(bad.status == 400 && bad.errorCode == "BadParameter")
            }
        }
    }

    @Test("a disabled version refuses every key operation with 403 'not allowed on a disabled key'")
    func disabled() async throws {
        try await Harness.with { harness in
            let token = try await harness.token()
            let key = try await harness.createKey("off", token: token, body: ["kty": "RSA", "attributes": ["enabled": false]])
            #expect(try await harness.send(.GET, "/keys/off/\(key.version)", token: token).status == 200)
            for operation in ["wrapkey", "unwrapkey", "encrypt", "decrypt"] {
                let reply = try await harness.send(.POST, "/keys/off/\(key.version)/\(operation)", json: ["alg": "RSA-OAEP-256", "value": "AAAA"], token: token)
                #expect(reply.status == 403)
                #expect(reply.errorCode == "Forbidden")
                #expect(reply.errorMessage?.hasSuffix("is not allowed on a disabled key.") == true)
            }
        }
    }

    @Test("outside [nbf, exp) wrap is refused but unwrap still works; key_ops limit operations")
    func validityWindow() async throws {
        try await Harness.with { harness in
            let token = try await harness.token()
            let now = Int(harness.clock.now().timeIntervalSince1970)
            let key = try await harness.createKey("timed", token: token, body: ["kty": "RSA", "attributes": ["nbf": now + 60, "exp": now + 3600]])
            let dek = KeyVaultBase64URL.encode(Data(repeating: 7, count: 32))
            let early = try await harness.send(.POST, "/keys/timed/\(key.version)/wrapkey", json: ["alg": "RSA-OAEP-256", "value": dek], token: token)
            #expect(early.status == 403)
            harness.clock.advance(by: .seconds(120))
            let wrapped = try await harness.send(.POST, "/keys/timed/\(key.version)/wrapkey", json: ["alg": "RSA-OAEP-256", "value": dek], token: token)
            #expect(wrapped.status == 200)
            harness.clock.advance(by: .seconds(3600))
            let late = try await harness.send(.POST, "/keys/timed/\(key.version)/wrapkey", json: ["alg": "RSA-OAEP-256", "value": dek], token: try await harness.token())
            #expect(late.status == 403 && late.errorMessage?.contains("expired") == true)
            let unwrap = try await harness.send(
                .POST, "/keys/timed/\(key.version)/unwrapkey", json: ["alg": "RSA-OAEP-256", "value": wrapped.json["value"] as? String ?? ""],
                token: try await harness.token())
            #expect(unwrap.status == 200)

            // Not yet valid again (nbf moved into the future): unwrap works, wrap does not, as Azure
            // documents for date-time controlled operations.
            let later = Int(harness.clock.now().timeIntervalSince1970)
            let moved = try await harness.send(.PATCH, "/keys/timed/\(key.version)", json: ["attributes": ["nbf": later + 100_000, "exp": later + 200_000]],
                                               token: try await harness.token())
            #expect(moved.status == 200)
            let earlyUnwrap = try await harness.send(
                .POST, "/keys/timed/\(key.version)/unwrapkey", json: ["alg": "RSA-OAEP-256", "value": wrapped.json["value"] as? String ?? ""],
                token: try await harness.token())
            #expect(earlyUnwrap.status == 200 && earlyUnwrap.json["value"] as? String == dek)
            let earlyWrap = try await harness.send(.POST, "/keys/timed/\(key.version)/wrapkey", json: ["alg": "RSA-OAEP-256", "value": dek], token: try await harness.token())
            #expect(earlyWrap.status == 403 && earlyWrap.errorMessage?.contains("not yet valid") == true)

            let limited = try await harness.createKey("limited", token: try await harness.token(), body: ["kty": "RSA", "key_ops": ["unwrapKey"]])
            let refused = try await harness.send(
                .POST, "/keys/limited/\(limited.version)/wrapkey", json: ["alg": "RSA-OAEP-256", "value": dek], token: try await harness.token())
            #expect(refused.status == 403)
        }
    }

    @Test("delete soft-deletes into a DeletedKeyBundle; the name is reserved; recover restores every version")
    func softDeleteAndRecover() async throws {
        try await Harness.with({ $0.retentionDays = 7 }) { harness in
            let token = try await harness.token()
            let first = try await harness.createKey("gone", token: token)
            _ = try await harness.send(.POST, "/keys/gone/rotate", token: token)
            let deleted = try await harness.send(.DELETE, "/keys/gone", token: token)
            #expect(deleted.status == 200)
            #expect(deleted.json["recoveryId"] as? String == "\(harness.server.vaultURL)/deletedkeys/gone")
            let deletedDate = try #require(deleted.json["deletedDate"] as? Int)
            #expect(deleted.json["scheduledPurgeDate"] as? Int == deletedDate + 7 * 86_400)
            #expect(deleted.json.attributes["recoveryLevel"] as? String == "CustomizedRecoverable")
            #expect(try await harness.send(.GET, "/keys/gone/", token: token).status == 404)
            #expect(try await harness.send(.GET, "/deletedkeys/gone", token: token).status == 200)
            let reuse = try await harness.send(.POST, "/keys/gone/create", json: ["kty": "RSA"], token: token)
            #expect(reuse.status == 409 && reuse.errorCode == "Conflict")
            let recovered = try await harness.send(.POST, "/deletedkeys/gone/recover", token: token)
            #expect(recovered.status == 200)
            #expect(try await harness.send(.GET, "/keys/gone/\(first.version)", token: token).status == 200)
            let notDeleted = try await harness.send(.GET, "/deletedkeys/gone", token: token)
            #expect(notDeleted.status == 404 && notDeleted.errorMessage == "Deleted Key not found: gone")
        }
    }

    @Test("purge is refused with 403 under purge protection and allowed (204) without it")
    func purge() async throws {
        for protected in [true, false] {
            try await Harness.with({ $0.purgeProtection = protected }) { harness in
                let token = try await harness.token()
                try await harness.createKey("p", token: token)
                _ = try await harness.send(.DELETE, "/keys/p", token: token)
                let purge = try await harness.send(.DELETE, "/deletedkeys/p", token: token)
                if protected {
                    #expect(purge.status == 403)
                    #expect(purge.errorMessage?.hasPrefix("Operation \"purge\" is not allowed because purge protection is enabled") == true)
                    #expect(try await harness.send(.GET, "/deletedkeys/p", token: token).status == 200)
                } else {
                    #expect(purge.status == 204 && purge.body.isEmpty)
                    #expect(try await harness.send(.GET, "/deletedkeys/p", token: token).status == 404)
                }
            }
        }
    }

    @Test("a soft-deleted key is purged by the service once its scheduled purge date passes")
    func retention() async throws {
        try await Harness.with({ $0.retentionDays = 7; $0.tokenLifetime = .seconds(30 * 86_400) }) { harness in
            let token = try await harness.token()
            try await harness.createKey("old", token: token)
            _ = try await harness.send(.DELETE, "/keys/old", token: token)
            harness.clock.advance(by: .seconds(7 * 86_400 - 1))
            #expect(try await harness.send(.GET, "/deletedkeys/old", token: token).status == 200)
            harness.clock.advance(by: .seconds(1))
            #expect(try await harness.send(.GET, "/deletedkeys/old", token: token).status == 404)
            #expect(try await harness.send(.POST, "/keys/old/create", json: ["kty": "RSA"], token: token).status == 200)
        }
    }

    @Test("a retention outside 7…90 days is refused at start")
    func retentionBounds() async throws {
        let ca = try TestCertificateAuthority.make()
        defer { ca.remove() }
        for days in [6, 91] {
            await #expect(throws: TestServerError.self) {
                try await AzureKeyVaultTestServer.start(.init(clientSecret: "x", retentionDays: days), tls: ca.server)
            }
        }
    }
}
