import CMKCore
import Crypto
import Foundation

/// `vault.json`: the vault's format and a master-key check value, so that a wrong master key is
/// reported once at start-up rather than as a failed seal on the first unwrap.
struct VaultMarker: Codable, Sendable {
    var format: Int
    var created: Date
    /// A fixed text sealed under the master key (AAD `…/master-key-check`).
    var masterKeyCheck: KeyDocument.SealedBox

    private static let checkKey = "master-key-check"
    private static let checkVersion = "0"

    static func checkOrCreate(at path: String, masterKey: SymmetricKey, source: MasterKeySource) throws(VaultError) {
        if try !exists(path) {
            let check = SecretBytes(copying: Data("cmk-syncer local vault".utf8))
            let marker = VaultMarker(format: KeyDocument.currentFormat, created: KeyDocument.stored(Date()),
                                     masterKeyCheck: try Sealing.seal(check, key: checkKey, version: checkVersion, masterKey: masterKey))
            let data: Data
            do { data = try KeyDocument.encoder().encode(marker) } catch {
                throw VaultError(.corrupt, "cannot encode \(path)", underlying: error)
            }
            if try VaultFiles.createExclusively(data, at: path) { return }
        }
        guard let (data, _) = try VaultFiles.read(path) else {
            throw VaultError(.corrupt, "vault file \(path) disappeared while the vault was opening")
        }
        let marker: VaultMarker
        do { marker = try KeyDocument.decoder().decode(VaultMarker.self, from: data) } catch {
            throw VaultError(.corrupt, "vault file \(path) is not valid (corrupt JSON or missing field)")
        }
        guard marker.format == KeyDocument.currentFormat else {
            throw VaultError(.corrupt, "vault file \(path) has format \(marker.format); this version reads format \(KeyDocument.currentFormat)")
        }
        do {
            try Sealing.open(marker.masterKeyCheck, key: checkKey, version: checkVersion, masterKey: masterKey, path: path).zeroize()
        } catch {
            throw VaultError(.misconfigured, "the master key from \(source) does not open the vault at \((path as NSString).deletingLastPathComponent): wrong master key, or \(path) was tampered with")
        }
    }

    private static func exists(_ path: String) throws(VaultError) -> Bool { try VaultFiles.identity(of: path) != nil }
}
