import Foundation
import Testing

/// `cmkctl` with the azure provider: key operations are refused by policy, naming the provider and
/// the `az` command that does it in Azure; no request leaves the host.
@Suite("cmkctl with the azure provider")
struct AzureProviderCLITests {
    @Test(arguments: [["keys", "rotate"], ["keys", "pull"], ["keys", "restore"]])
    func keyOperationsAreDoneInAzure(arguments: [String]) throws {
        let root = NSTemporaryDirectory() + "cmkctl-azure-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let secret = root + "/azure.secret"
        _ = FileManager.default.createFile(atPath: secret, contents: Data("not-a-real-secret".utf8), attributes: [.posixPermissions: 0o600])
        let config = root + "/cmk-syncer.yaml"
        try """
            state-directory: \(root)/state
            vault:
              provider: azure
              key: data-at-rest-rsa2048
              azure:
                vault-url: https://contoso-cmk.vault.azure.net
                tenant-id: 72f988bf-86f1-41af-91ab-2d7cd011db47
                client-id: 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
                client-secret-file: \(secret)
            accounts:
              - {name: files-1, kind: file, driver: directory, location: \(root)/state/accounts/files-1, create: true}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let result = try Harness.run(try Harness.binary("cmkctl"), arguments + ["--config", config])
        #expect(result.code == 1, "exit code \(result.code): \(result.stderr)")
        #expect(result.stderr.contains("the 'azure' vault provider does not let cmkctl manage keys"), "\(result.stderr)")
        #expect(result.stderr.contains("az keyvault key rotate --vault-name contoso-cmk --name data-at-rest-rsa2048"), "\(result.stderr)")
        #expect(!result.stderr.contains("not-a-real-secret"))
    }
}
