import CMKCore
@testable import CMKConfiguration
import Testing

/// `vault.azure.usage-report`: off unless asked for (Azure Key Vault has no usage route).
@Suite("vault.azure.usage-report")
struct UsageReportSettingTests {
    @Test("off by default, on with true, a non-boolean refused at its key")
    func setting() throws {
        let minimal = AzureVaultTests.minimal
        #expect(try Fixture.parse(Fixture.yaml(vault: AzureVaultTests.azure(minimal))).vault.azure?.usageReport == false)
        #expect(try Fixture.parse(Fixture.yaml(vault: AzureVaultTests.azure(minimal + "\nusage-report: true"))).vault.azure?.usageReport == true)
        #expect(try Fixture.parse(Fixture.yaml(vault: AzureVaultTests.azure(minimal + "\nusage-report: false"))).vault.azure?.usageReport == false)
        let error = #expect(throws: ConfigurationError.self) {
            _ = try Fixture.parse(Fixture.yaml(vault: AzureVaultTests.azure(minimal + "\nusage-report: sometimes")))
        }
        #expect(error?.keyPath == "vault.azure.usage-report")
    }
}
