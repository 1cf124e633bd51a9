import CMKCore
import CMKLocalVault
import Foundation
import Testing

@testable import CMKAzureTestServer

/// The emulator driven by Microsoft's Python SDK (azure-identity + azure-keyvault-keys): if the
/// official client gets through create → rotate → local wrap → unwrap → disable → delete →
/// recover → purge refusal, the emulator speaks the protocol the real clients speak.
@Suite("Azure test server: Microsoft's Python SDK cross-check")
struct PythonSDKCrossCheckTests {
    static let script: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent()
        return url.appendingPathComponent("Scripts/sdk_cross_check.py").path
    }()

    static let installHint = "install it with `scripts/install-deps.sh` (pip install azure-keyvault-keys azure-identity cryptography)"

    /// Where the keys API keeps its keys in the run: memory (the test server's default) or the
    /// local vault's sealed files, as cmk-vault keeps them.
    enum Store: String, CaseIterable, Sendable {
        case memory, localVault
    }

    @Test("the official SDK completes the key lifecycle against the emulator, over memory and over the local vault's files",
          arguments: ["2025-07-01", "7.6"], Store.allCases)
    func lifecycle(_ apiVersion: String, _ store: Store) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cmk-sdk-local-vault-" + UUID().uuidString)
        defer { try? FileManager.default.removeItem(at: directory) }
        let vault = store == .localVault
            ? try LocalVault(configuration: .init(directory: directory, masterKey: .bytes(.random(count: 32)), retentionDays: 7, purgeProtection: true))
            : nil
        try await Harness.with({
            $0.retentionDays = 7; $0.purgeProtection = true; $0.managedIdentityClientID = "sdk-managed-identity"; $0.keyStore = vault
        }) { harness in
            let result = try Self.run(harness: harness, apiVersion: apiVersion)
            let steps = try #require(result["steps"] as? [[String: Any]], "script output: \(result)")
            func step(_ name: String) throws -> [String: Any] {
                try #require(steps.first { $0["step"] as? String == name }, "step \(name) missing from \(steps.map { $0["step"] ?? "?" })")
            }
            #expect(result["api_version"] as? String == apiVersion)
            let create = try step("create")
            #expect((create["kid"] as? String)?.hasPrefix(harness.server.vaultURL + "/keys/sdk-cross-check/") == true)
            #expect(create["recovery_level"] as? String == "CustomizedRecoverable")
            #expect(create["recoverable_days"] as? Int == 7)
            #expect(create["tags"] as? [String: String] == ["purpose": "cross-check"])
            let rotate = try step("rotate")
            #expect(rotate["differs"] as? Bool == true && rotate["new_modulus"] as? Bool == true)
            #expect(try step("get_latest")["version"] as? String == rotate["version"] as? String)
            let list = try step("list_versions")
            #expect((list["versions"] as? [String])?.count == 2)
            #expect(list["pages"] as? Int == 2)
            #expect(try step("unwrap_rsa_oaep_256")["matches"] as? Bool == true)
            #expect(try step("unwrap_rsa_oaep_old_version")["matches"] as? Bool == true)
            #expect(try step("disable_old_version")["enabled"] as? Bool == false)
            let refused = try step("unwrap_disabled")
            #expect(refused["refused"] as? Bool == true && refused["status"] as? Int == 403)
            #expect(try step("get_missing")["not_found"] as? Bool == true)
            let delete = try step("delete")
            #expect(delete["recovery_id"] as? String == "\(harness.server.vaultURL)/deletedkeys/sdk-cross-check")
            let deletedOn = try #require(delete["deleted_on"] as? Double), purgeOn = try #require(delete["scheduled_purge"] as? Double)
            #expect(purgeOn - deletedOn == 7 * 86_400)
            #expect(try step("get_after_delete")["not_found"] as? Bool == true)
            #expect(try step("recover")["same_latest"] as? Bool == true)
            #expect(try step("unwrap_after_recover")["matches"] as? Bool == true)
            #expect(try step("certificate_credential")["version"] as? String == rotate["version"] as? String)
            #expect(try step("managed_identity")["version"] as? String == rotate["version"] as? String)
            #expect(harness.server.requests.contains { $0.endpoint == .imds && $0.status == 200 })
            let assertionGrant = harness.server.requests.filter { $0.endpoint == .token && $0.status == 200 }
            #expect(assertionGrant.count >= 2, "both the secret and the certificate credential should have got a token")
            let purge = try step("purge")
            #expect(purge["refused"] as? Bool == true && purge["status"] as? Int == 403)
            let vaultCalls = harness.server.requests.filter { $0.endpoint == .vault }
            #expect(vaultCalls.contains { $0.status == 401 }, "the SDK should have met the challenge")
            #expect(harness.server.requests.contains { $0.endpoint == .token && $0.status == 200 })
            if let vault {
                // The key the SDK made and deleted at the end is a local-vault key on disk: the
                // daemon's provider sees it deleted with both versions, the older one disabled;
                // recovered by the vault, it unwraps with the newer one.
                let key = try KeyReference("sdk-cross-check")
                let snapshot = try await vault.snapshot(of: key)
                guard case .deleted(let deleted) = snapshot else { throw HarnessError("the local vault does not hold the SDK's deleted key: \(snapshot)") }
                #expect(Set(deleted.versions.map(\.id)) == Set(list["versions"] as? [String] ?? []))
                #expect(deleted.versions.last?.id == rotate["version"] as? String)
                #expect(deleted.versions.map(\.enabled) == [false, true])
                let state = try await vault.recoverKey(key)
                let dek = SecretBytes.random(count: 32)
                let current = try #require(state.versions.last?.id)
                let wrapped = try await vault.wrap(dek, key: key, version: current, algorithm: .rsaOAEP256)
                #expect(try await vault.unwrap(wrapped, key: key, version: current, algorithm: .rsaOAEP256) == dek)
                let file = try String(contentsOf: directory.appendingPathComponent("keys/sdk-cross-check.json"), encoding: .utf8)
                #expect(file.contains("\"sealedPrivateKey\"") && !file.contains("PRIVATE KEY"))
            }
        }
    }

    /// Runs the script; a missing Python or SDK is a failure with instructions, never a skip.
    static func run(harness: Harness, apiVersion: String) throws -> [String: Any] {
        // The python3 on PATH is the one `scripts/install-deps.sh` installed the SDK into.
        guard let python = which("python3") ?? ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: FileManager.default.isExecutableFile(atPath:))
        else {
            throw HarnessError("python3 is missing: \(installHint)")
        }
        var environment = ProcessInfo.processInfo.environment
        environment["AKV_VAULT_URL"] = harness.server.vaultURL
        environment["AKV_AUTHORITY"] = harness.server.authorityHost
        environment["AKV_TENANT_ID"] = harness.server.configuration.tenantID
        environment["AKV_CLIENT_ID"] = harness.server.configuration.clientID
        environment["AKV_CLIENT_SECRET"] = Harness.secret
        environment["AKV_CA_FILE"] = harness.ca.caCertificatePath
        environment["AKV_API_VERSION"] = apiVersion
        let combined = harness.ca.directory + "/client-combined.pem"
        let pem = try String(contentsOfFile: harness.ca.client.certificatePath, encoding: .utf8)
            + String(contentsOfFile: harness.ca.client.privateKeyPath, encoding: .utf8)
        try Data(pem.utf8).write(to: URL(fileURLWithPath: combined))
        environment["AKV_CLIENT_CERTIFICATE"] = combined
        environment["AKV_MANAGED_IDENTITY_CLIENT_ID"] = harness.server.configuration.managedIdentityClientID
        environment["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = harness.server.imdsEndpoint
        for name in ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT"] {
            environment[name] = nil  // other managed-identity hosts would take precedence over IMDS
        }
        let run = try ProcessRunner.run(python, [script], environment: environment)
        let result = (try? JSONSerialization.jsonObject(with: run.output)) as? [String: Any] ?? [:]
        if run.status == 3 {
            throw HarnessError("the Azure SDK for Python is not installed (\(result["missing"] ?? "")): \(installHint)")
        }
        guard run.status == 0 else {
            throw HarnessError("""
                the SDK cross-check failed (exit \(run.status)): \(result["error"] ?? "")
                \(result["trace"] ?? "")
                stderr: \(run.errors.suffix(2000))
                """)
        }
        return result
    }

    private static func which(_ name: String) -> String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        return paths.map { "\($0)/\(name)" }.first(where: FileManager.default.isExecutableFile(atPath:))
    }
}
