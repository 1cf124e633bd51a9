import CMKCore
import Foundation

/// Maps Key Vault error answers onto ``VaultError``. The service's message is kept (it names the
/// key, the operation and, for RBAC, the caller's object id; never a secret), cut to one line.
enum ErrorMapping {
    static func error(_ response: AzureHTTPResponse, operation: String, host: String, wallNow: Date) -> VaultError {
        let body = try? JSONDecoder().decode(KeyVaultErrorBody.self, from: response.body)
        let code = body?.error?.code ?? "-"
        let inner = body?.error?.innererror?.code
        let message = clean(body?.error?.message ?? "")
        let detail = "HTTP \(response.status) \(code)\(inner.map { "/\($0)" } ?? "")\(message.isEmpty ? "" : ": \(message)")"
        let lower = message.lowercased()
        switch response.status {
        case 400:
            return VaultError(.invalidInput, "the vault refused \(operation) as malformed (\(detail))")
        case 401:
            return VaultError(.unauthorized, "the vault rejected our token for \(operation) after re-authentication (\(detail))")
        case 403:
            if lower.contains("disabled") {
                return VaultError(.disabled, "the vault refused \(operation): the key version is disabled (\(detail))")
            }
            if lower.contains("purge protection") {
                return VaultError(.conflict, "the vault refused \(operation): purge protection holds until the scheduled purge date (\(detail))")
            }
            if lower.contains("expired") || lower.contains("not yet valid") || lower.contains("not valid") {
                return VaultError(.invalidInput, "the vault refused \(operation): the key version is outside its validity period (\(detail))")
            }
            let why = code == "ForbiddenByFirewall" || code == "ForbiddenByConnection"
                ? "the vault's network rules do not admit this host"
                : "the identity lacks permission (RBAC role or access policy)"
            return VaultError(.forbidden, "the vault refused \(operation): \(why) (\(detail))")
        case 404:
            return VaultError(.notFound, "\(operation): not found (\(detail))")
        case 409:
            return VaultError(.conflict, "the vault refused \(operation): it conflicts with the key's state (\(detail))")
        case 429:
            return VaultError(.throttled, "the vault is throttling \(operation) (\(detail))",
                              retryAfter: RetryAfter.parse(response.header("Retry-After"), now: wallNow))
        case 500...599:
            return VaultError(.unavailable, "the vault failed \(operation) (\(detail))",
                              retryAfter: RetryAfter.parse(response.header("Retry-After"), now: wallNow))
        default:
            return VaultError(.misconfigured, "unexpected HTTP \(response.status) from \(host) for \(operation); is vault-url right? (\(detail))")
        }
    }

    /// One line, at most 400 characters.
    static func clean(_ message: String) -> String {
        let line = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        return line.count > 400 ? String(line.prefix(400)) + "…" : line
    }
}
