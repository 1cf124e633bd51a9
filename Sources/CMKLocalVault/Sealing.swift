import CMKCore
import Crypto
import Foundation

/// Seals private keys at rest with AES-256-GCM under the master key. The AAD binds the vault
/// format, the key name and the version id, so a sealed key moved to another version or key
/// fails authentication.
enum Sealing {
    static let algorithm = "A256GCM"

    static func associatedData(key: String, version: String) -> Data {
        Data("cmk-syncer/local-vault/v\(KeyDocument.currentFormat)\u{0}key=\(key)\u{0}version=\(version)".utf8)
    }

    static func seal(_ plaintext: SecretBytes, key: String, version: String, masterKey: SymmetricKey) throws(VaultError) -> KeyDocument.SealedBox {
        do {
            let box = try plaintext.withUnsafeBytes {
                try AES.GCM.seal($0, using: masterKey, authenticating: associatedData(key: key, version: version))
            }
            return .init(algorithm: algorithm, nonce: Data(box.nonce), ciphertext: box.ciphertext, tag: box.tag)
        } catch {
            throw VaultError(.corrupt, "sealing the private key of key '\(key)' version \(version) failed", underlying: error)
        }
    }

    static func open(_ sealed: KeyDocument.SealedBox, key: String, version: String, masterKey: SymmetricKey, path: String) throws(VaultError) -> SecretBytes {
        guard sealed.algorithm == algorithm else {
            throw VaultError(.corrupt, "key file \(path): version \(version) of key '\(key)' is sealed with '\(sealed.algorithm)'; only \(algorithm) is supported")
        }
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: sealed.nonce), ciphertext: sealed.ciphertext, tag: sealed.tag)
            var plain = try AES.GCM.open(box, using: masterKey, authenticating: associatedData(key: key, version: version))
            defer { plain.resetBytes(in: 0..<plain.count) }
            return SecretBytes(copying: plain)
        } catch {
            throw VaultError(.corrupt, "key file \(path): the sealed private key of key '\(key)' version \(version) failed authentication: the master key is wrong or the file was tampered with")
        }
    }
}
