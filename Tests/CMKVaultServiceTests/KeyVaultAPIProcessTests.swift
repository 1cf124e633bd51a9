import CMKAzureTestServer
import Foundation
import Testing

/// cmk-vault's keys API over its own local vault, driven by Microsoft's Python SDK
/// (`Scripts/keys_runbooks.py`): the customer's create, rotate, pull and restore runbooks as the
/// service principal, a platform identity that reads and unwraps but may not rotate, and a
/// security-log record for each change and key use.
@Suite(.serialized) struct KeyVaultAPIProcessTests {
    @Test("the SDK's rotate, pull and restore runbooks against cmk-vault; a platform identity unwraps but may not rotate; each change and use is a record")
    func runbooks() throws {
        let vault = try VaultProcess.start(extra: "vault: {master-key-file: master.key, create-master-key: true, retention-days: 7}")
        defer { vault.stop() }
        let admin = try vault.ctl(["admins", "add", "Ada Admin", "--json"])
        let platform = try vault.ctl(["identities", "add", "node-1.example", "--json"])
        let result = try vault.python("keys_runbooks.py", [
            "ADMIN_CLIENT_ID": try #require(admin["clientId"] as? String), "ADMIN_SECRET": try #require(admin["secret"] as? String),
            "PLATFORM_CLIENT_ID": try #require(platform["clientId"] as? String), "PLATFORM_SECRET": try #require(platform["secret"] as? String),
        ])
        #expect(result["created_kty"] as? String == "RSA-HSM", "\(result)")
        #expect(result["created_kid_prefix"] as? Bool == true)
        #expect(result["rotated"] as? Bool == true && result["old_expires"] as? Bool == true && result["current"] as? Bool == true)
        #expect(result["versions"] as? [String] == result["expected_versions"] as? [String])
        #expect(result["unwrap_matches"] as? Bool == true)
        #expect(result["platform_get"] as? Bool == true && result["platform_unwrap"] as? Bool == true)
        #expect(result["platform_rotate"] as? Int == 403)
        #expect(result["recovery_id"] as? Bool == true)
        #expect(result["pulled_get"] as? Int == 404)
        #expect(result["pulled_unwrap"] as? Int == 404)
        #expect(result["restored_unwrap"] as? Bool == true)
        #expect(result["purge"] as? Int == 403)
        #expect(result["log_status"] as? Int == 200)
        let operations = result["operations"] as? [String] ?? []
        for operation in ["key-created", "key-updated", "key-unwrapkey", "key-deleted", "key-recovered", "key-purged", "key-purged-failed", "access-denied"] {
            #expect(operations.contains(operation), "no \(operation) record in \(operations)")
        }
        #expect(operations.filter { $0 == "key-created" }.count == 2, "create and the rotation's new version: \(operations)")
        #expect(result["updated_versions"] as? [String] == [try #require(result["first_version"] as? String)],
                "the expiry set on the old version is recorded with that version: \(result["updated_versions"] ?? "none")")
        #expect(operations.filter { $0 == "key-unwrapkey" }.count >= 4, "every unwrap is a record: \(operations)")
        // A key use names the identity and the caller's address: the platform identity's one unwrap
        // (of the rotated key's new version) is its record, and the service principal's are its own.
        let platformUnwraps = result["platform_unwraps"] as? [[String: String]] ?? []
        #expect(platformUnwraps.count == 1, "the platform identity unwrapped once: \(platformUnwraps)")
        for unwrap in platformUnwraps {
            #expect(unwrap == ["role": "platform", "address": "127.0.0.1", "key": "data-at-rest-rsa2048",
                               "version": try #require(result["second_version"] as? String)], "\(unwrap)")
        }
        #expect(result["principal_unwrap_actors"] as? [String] == [try #require(result["app_id"] as? String)], "\(result["principal_unwrap_actors"] ?? "none")")
        // The vault's files hold sealed private keys only.
        let file = try String(contentsOfFile: vault.state + "/vault/keys/data-at-rest-rsa2048.json", encoding: .utf8)
        #expect(file.contains("sealedPrivateKey") && !file.contains("PRIVATE KEY"))
    }
}
