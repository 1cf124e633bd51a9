import CMKEntra
import CMKKeyVaultAPI
import Foundation

/// The identity platform's errors (CMKEntra, shared with cmk-vault) as this server's responses.
typealias AADError = IdentityPlatformError

extension IdentityPlatformError {
    func response(status: Int) -> ServerResponse { .json(status, body()) }
}
