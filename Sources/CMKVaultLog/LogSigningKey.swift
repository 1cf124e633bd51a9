import CMKCore
import CMKTransparency
import Foundation
import Glibc

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
        let path = stateDirectory + "/" + fileName
        let info: stat?
        do throws(SystemFileError) {
            info = try SystemFile.status(path, followLinks: false)
        } catch {
            throw VaultLogError(.io, "cannot stat the log signing key '\(path)': \(error.message)")
        }
        guard let info else { return nil }
        if let problem = FileAccessRule.privateFile.problem(with: info, path: path, what: "log signing key") {
            throw VaultLogError(.permissions, problem.description)
        }
        guard let data = FileManager.default.contents(atPath: path), data.count < 4096,
              let text = String(data: data, encoding: .utf8)
        else {
            throw VaultLogError(.io, "cannot read the log signing key '\(path)' (or it is larger than 4 KiB); check its owner and mode 0600")
        }
        do {
            return try NoteSigner(signerKey: text.trimmingCharacters(in: .newlines))
        } catch {
            throw VaultLogError(.corrupt, "the log signing key '\(path)' is not a PRIVATE+KEY+<name>+<id>+<key> signer key; restore it from the backup of the state directory")
        }
    }

    /// Reads the key, or makes one named `origin` (created exclusively, 0600) when there is none.
    /// An existing key must carry `origin`: customers pinned it.
    public static func loadOrCreate(stateDirectory: String, origin: String) throws -> NoteSigner {
        if let signer = try load(stateDirectory: stateDirectory) {
            guard signer.name == origin else {
                throw VaultLogError(.originChanged, "the security log was created with origin '\(signer.name)' but the public-url now gives '\(origin)'; a log's origin cannot change (customers pinned it): restore the public-url's host")
            }
            return signer
        }
        let signer: NoteSigner
        do {
            signer = try NoteSigner.generate(name: origin)
        } catch {
            throw VaultLogError(.io, "cannot make a log signing key named '\(origin)': \(error)")
        }
        let path = stateDirectory + "/" + fileName
        let created: Bool
        do throws(SystemFileError) {
            created = try SystemFile.createExclusively(Data((signer.signerKey + "\n").utf8), at: path, mode: 0o600)
        } catch {
            throw VaultLogError(.io, "cannot write the log signing key '\(path)': \(error.message)")
        }
        // Made meanwhile by another process: use that one.
        return created ? signer : try loadOrCreate(stateDirectory: stateDirectory, origin: origin)
    }
}
