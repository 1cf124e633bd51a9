import CMKCore
import Foundation

extension AzureKeyVault {
    /// `POST /v1.0/usageReports` on the vault with the provider's own token, limiter and challenge
    /// handling: the host's version usage after a pass, for cmk-vault (docs/vault-service.md,
    /// "Version usage from the hosts"). Azure Key Vault has no such route (it answers 404): only
    /// called when `vault.azure.usage-report` is true. Retried only after a 429, as the provider's
    /// other non-idempotent calls: a failing report never holds up the daemon for long.
    ///
    /// - Parameter body: the report's JSON (counts per key version; nothing secret).
    /// - Throws: ``VaultError`` for any answer but 204.
    public func postUsageReport(_ body: Data) async throws(VaultError) {
        let operation = "usage-report"
        let response = try await send(VaultCall(operation: operation, method: "POST", path: "/v1.0/usageReports", body: body, idempotent: false))
        guard response.status == 204 || response.status == 200 else { throw mapped(response, operation) }
    }
}
