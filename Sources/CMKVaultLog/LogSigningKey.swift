import CMKCore
import CMKTransparency
import Foundation

/// The log's Ed25519 checkpoint key, `log-signing.key` in the vault state directory (0600): the
/// signer key text of Go's sumdb/note format, generated once per deployment. Its name is the
/// log's origin, `<host of public-url>/cmk-vault/<tenant id>`, fixed when the key is made.
public enum LogSigningKey {
    /// The key's file name in the state directory.
    public static let fileName = "log-signing.key"

    /// The origin of a log: `<host of publicURL>/cmk-vault/<tenantID>` (the host without port).
    public static func origin(publicURL: String, tenantID: String) -> String {
        let host = URLComponents(string: publicURL)?.host ?? publicURL
        return "\(host)/cmk-vault/\(tenantID)"
    }

    /// Reads the key in `stateDirectory`; nil when there is none yet.
    public static func load(stateDirectory: String) throws -> NoteSigner? {
        do throws(SignerKeyFile.Failure) {
            return try SignerKeyFile.load(path: stateDirectory + "/" + fileName, rule: .privateFile, what: "log signing key")
        } catch {
            throw vaultLogError(error)
        }
    }

    /// Reads the key, or makes one named `origin` (created exclusively, 0600) when there is none.
    /// An existing key must carry `origin`: customers pinned it.
    public static func loadOrCreate(stateDirectory: String, origin: String) throws -> NoteSigner {
        do throws(SignerKeyFile.Failure) {
            return try SignerKeyFile.loadOrCreate(path: stateDirectory + "/" + fileName, name: origin, rule: .privateFile, what: "log signing key").signer
        } catch {
            if case .nameMismatch(let existing) = error.kind {
                throw VaultLogError(.originChanged, "the security log was created with origin '\(existing)' but the public-url now gives '\(origin)'; a log's origin cannot change (customers pinned it): restore the public-url's host")
            }
            throw vaultLogError(error)
        }
    }

    private static func vaultLogError(_ failure: SignerKeyFile.Failure) -> VaultLogError {
        switch failure.kind {
        case .permissions: return VaultLogError(.permissions, failure.detail)
        case .corrupt, .nameMismatch: return VaultLogError(.corrupt, failure.detail)
        case .io: return VaultLogError(.io, failure.detail)
        }
    }
}
