import CMKCore
import Foundation

/// Maps Key Vault error answers onto ``VaultError``. The service's message is kept (it names the
/// key, the operation and, for RBAC, the caller's object id; never a secret), cut to one line.
///
/// A diagnosis that would alarm the customer needs Key Vault's own word for it: a key is missing
/// only on the JSON error `KeyNotFound`, and a version disabled only on `KeyDisabled` (or, without
/// an inner code, "…not allowed on a disabled key"). A 404 from anything else (a proxy's HTML page,
/// a wrong vault URL) is a misconfiguration, and a 403 from the vault's network rules is access
/// denied, whatever words its message uses.
enum ErrorMapping {
    static func error(_ response: AzureHTTPResponse, operation: String, vaultURL: URL, wallNow: Date) -> VaultError {
        let body = try? JSONDecoder().decode(KeyVaultErrorBody.self, from: response.body)
        let code = body?.error?.code ?? "-"
        let inner = body?.error?.innererror?.code
        let message = clean(body?.error?.message ?? "")
        let detail = "HTTP \(response.status) \(code)\(inner.map { "/\($0)" } ?? "")\(message.isEmpty ? "" : ": \(message)")"
        let lower = message.lowercased()
        let host = vaultURL.host ?? "?"
        switch response.status {
        case 400:
            return VaultError(.invalidInput, "the vault refused \(operation) as malformed (\(detail))")
        case 401:
            return VaultError(.unauthorized, "the vault rejected our token for \(operation) after re-authentication (\(detail))")
        case 403:
            let codes: Set<String> = [code, inner ?? ""]
            if !codes.isDisjoint(with: ["ForbiddenByConnection", "ForbiddenByFirewall"]) {
                return VaultError(.forbidden, "the vault refused \(operation): its network rules refuse this host (firewall or disabled public network access; allow this host's address or reach the vault through its private endpoint) (\(detail))")
            }
            if codes.contains("KeyDisabled") || (inner == nil && lower.contains("disabled key")) {
                return VaultError(.disabled, "the vault refused \(operation): the key version is disabled (\(detail))")
            }
            if lower.contains("purge protection") {
                return VaultError(.conflict, "the vault refused \(operation): purge protection holds until the scheduled purge date (\(detail))")
            }
            if !codes.isDisjoint(with: ["KeyExpired", "KeyNotYetValid"]) || lower.contains("expired") || lower.contains("not yet valid")
                || lower.contains("not valid") {
                return VaultError(.invalidInput, "the vault refused \(operation): the key version is outside its validity period (\(detail))")
            }
            return VaultError(.forbidden, "the vault refused \(operation): the identity lacks permission (RBAC role or access policy) (\(detail))")
        case 404 where isKeyNotFound(response):
            return VaultError(.notFound, "\(operation): not found (\(detail))")
        case 404:
            let what = body?.error?.code.map { "its error code is \($0), not KeyNotFound" }
                ?? "no Key Vault JSON error in the body (Content-Type \(response.header("Content-Type") ?? "none"))"
            return VaultError(.misconfigured, "HTTP 404 from \(vaultURL.absoluteString) for \(operation) is not Key Vault's answer (\(what)): is vault.azure.vault-url right, or is a proxy answering instead of the vault?")
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

    /// Whether the answer is Key Vault's own "no such key" (HTTP 404 with the JSON error code
    /// `KeyNotFound`), the only answer that may mean a key, version or deleted key is absent.
    static func isKeyNotFound(_ response: AzureHTTPResponse) -> Bool {
        guard response.status == 404 else { return false }
        return (try? JSONDecoder().decode(KeyVaultErrorBody.self, from: response.body))?.error?.code == "KeyNotFound"
    }

    /// One line, at most 400 characters.
    static func clean(_ message: String) -> String {
        let line = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        return line.count > 400 ? String(line.prefix(400)) + "…" : line
    }
}
