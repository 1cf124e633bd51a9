import CMKAzureTestServer
import CMKIdentity
import Foundation
import Testing

/// The Security Logs API of a real cmk-vault over loopback TLS, checked by the customer's side:
/// azure-identity for the token, and the independent RFC 9162 / C2SP verifier
/// (Tests/CMKTransparencyTests/Scripts/tlog_verify.py) for checkpoints and proofs
/// (Scripts/security_log_flow.py).
@Suite("cmk-vault: the Security Logs API, verified by the customer", .serialized)
struct SecurityLogAPITests {
    @Test("events become records; checkpoints, inclusion and consistency proofs verify independently; a tampered record is rejected; access lists who can touch the key")
    func verifiedByCustomer() async throws {
        let vault = try VaultProcess.start()
        defer { vault.stop() }
        let admin = try vault.ctl(["admins", "add", "Log Reader", "--json"])
        let platform = try vault.ctl(["identities", "add", "node-7.example", "--json"])
        let adminID = try #require(admin["clientId"] as? String)
        let adminSecret = try #require(admin["secret"] as? String)
        let result = try vault.python("security_log_flow.py", ["ADMIN_CLIENT_ID": adminID, "ADMIN_SECRET": adminSecret])

        #expect(result["failed_sign_ins"] as? [Bool] == [true, true, true])
        #expect(result["public_key_status"] as? Int == 200)
        let tenant = try vault.tenantID()
        #expect(result["origin"] as? String == "127.0.0.1/cmk-vault/\(tenant)")
        #expect((result["verifier_key"] as? String)?.hasPrefix("127.0.0.1/cmk-vault/\(tenant)+") == true)
        #expect(result["checkpoint_status"] as? Int == 200)
        #expect(result["checkpoint_content_type"] as? String == "text/plain; charset=utf-8")
        #expect(result["checkpoint_time"] is String)
        #expect(result["checkpoint_again_same"] as? Bool == true)

        // token-issued, 2 failures, add + revoke; then 1 failure, add + revoke.
        let sizes = try #require(result["checkpoint_sizes"] as? [Int])
        #expect(sizes == [5, 8], "\(sizes)")
        #expect(result["record_count"] as? Int == 8)
        #expect(result["pages"] as? Int == 3, "8 records, 3 a page")
        #expect(result["indices_in_order"] as? Bool == true)
        #expect(result["leaf_is_canonical_record"] as? Bool == true)
        #expect(result["operations"] as? [String] == ["authentication-failed", "credential-added", "credential-revoked", "token-issued"])
        #expect(result["secret_in_records"] as? Bool == false)
        #expect(result["revoked_by_admin"] as? Bool == true)
        #expect(result["filter_operation"] as? [String] == ["authentication-failed"])
        #expect(result["filter_operation_count"] as? Int == 3)
        #expect(result["filter_actor_only_admin"] as? Bool == true)
        #expect(result["filter_future_count"] as? Int == 0)

        let honest = try #require(result["verify_honest"] as? [String: Any])
        #expect(honest["exit"] as? Int == 0, "\(honest)")
        #expect((honest["checked"] as? Int ?? 0) >= 1, "\(honest)")
        #expect(result["tampered_differs"] as? Bool == true)
        let tampered = try #require(result["verify_tampered"] as? [String: Any])
        #expect(tampered["exit"] as? Int == 1, "\(tampered)")
        #expect((tampered["last"] as? String)?.hasPrefix("REJECTED:") == true, "\(tampered)")

        let errors = try #require(result["errors"] as? [String: Int])
        for name in ["index_not_below_size", "size_beyond_tree", "from_above_to", "negative", "top_too_large", "unknown_parameter", "bad_time"] {
            #expect(errors[name] == 400, "\(name): \(errors[name] ?? 0)")
        }
        #expect(errors["no_token"] == 401)
        #expect(result["error_shape"] as? [String] == ["code", "message"])

        #expect(result["access_status"] as? Int == 200)
        #expect(result["access_admins"] as? [String] == [adminID])
        #expect(result["access_admin_last_used"] as? Bool == true, "the administrator signed in: its last use is listed")
        #expect(result["access_keys"] as? [String] == [], "both keys were revoked")
        #expect(result["access_platform"] as? [String] == [try #require(platform["name"] as? String)])
        #expect(result["reads_not_logged"] as? Bool == true)

        // The operator's copy of the key, for the customer to pin, is the one the service publishes.
        let pinned = try vault.ctl(["vault", "log-key", "--json"])
        #expect(pinned["verifierKey"] as? String == result["verifier_key"] as? String)
        #expect(pinned["origin"] as? String == result["origin"] as? String)
        let plain = try ProcessRunner.run(try VaultProcess.binary("cmkctl"), ["vault", "log-key", "--vault-state", vault.state])
        #expect(plain.status == 0)
        #expect(String(decoding: plain.output, as: UTF8.self) == (result["verifier_key"] as? String ?? "-") + "\n")
        let empty = NSTemporaryDirectory() + "cmk-vault-empty-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let missing = try ProcessRunner.run(try VaultProcess.binary("cmkctl"), ["vault", "log-key", "--vault-state", empty])
        #expect(missing.status == 1, "no key yet: exit 1")
        #expect(missing.errors.contains("log-signing.key"), "\(missing.errors)")

        // No secret in the log's files either, and they are private.
        for file in ["security-log.sqlite", "security-log.sqlite-wal", "log-signing.key"] {
            let path = vault.state + "/" + file
            guard let bytes = FileManager.default.contents(atPath: path) else { continue }
            #expect(bytes.range(of: Data(adminSecret.utf8)) == nil, "\(file) holds the administrator's secret")
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file): \(String(mode ?? 0, radix: 8))")
        }
    }
}
