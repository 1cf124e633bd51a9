import CMKCore
import CMKEnvelope
import Foundation

/// Seals private keys at rest with AES-256-GCM under the master key. The AAD binds the vault
/// format, the key name and the version id, so a sealed key moved to another version or key
/// fails authentication. The cipher runs in the system libcrypto (``Libcrypto``), whose contexts
/// live in secret memory: the master key and its key schedule stay out of core dumps.
enum Sealing {
    static let algorithm = "A256GCM"

    static func associatedData(key: String, version: String) -> Data {
        Data("cmk-syncer/local-vault/v\(KeyDocument.currentFormat)\u{0}key=\(key)\u{0}version=\(version)".utf8)
    }

    static func seal(_ plaintext: SecretBytes, key: String, version: String, masterKey: SecretBytes) throws(VaultError) -> KeyDocument.SealedBox {
        guard let box = Libcrypto.sealAES256GCM(plaintext, key: masterKey, authenticating: associatedData(key: key, version: version)) else {
            throw VaultError(.corrupt, "sealing the private key of key '\(key)' version \(version) failed in libcrypto")
        }
        return .init(algorithm: algorithm, nonce: box.nonce, ciphertext: box.ciphertext, tag: box.tag)
    }

    static func open(_ sealed: KeyDocument.SealedBox, key: String, version: String, masterKey: SecretBytes, path: String) throws(VaultError) -> SecretBytes {
        guard sealed.algorithm == algorithm else {
            throw VaultError(.corrupt, "key file \(path): version \(version) of key '\(key)' is sealed with '\(sealed.algorithm)'; only \(algorithm) is supported")
        }
        let box = Libcrypto.SealedBox(nonce: sealed.nonce, ciphertext: sealed.ciphertext, tag: sealed.tag)
        guard let plain = Libcrypto.openAES256GCM(box, key: masterKey, authenticating: associatedData(key: key, version: version)) else {
            throw VaultError(.corrupt, "key file \(path): the sealed private key of key '\(key)' version \(version) failed authentication: the master key is wrong or the file was tampered with")
        }
        return plain
    }
}
