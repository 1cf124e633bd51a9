import CMKCore
import CryptoExtras
import Foundation

/// A parsed private key, shared between concurrent unwraps.
///
/// `@unchecked Sendable` is safe: the only stored property is an immutable
/// `_RSA.Encryption.PrivateKey`, whose sole stored property is swift-crypto's
/// `BoringSSLRSAPrivateKey`, which swift-crypto itself declares `Sendable` (its backing class
/// is `@unchecked Sendable` over a BoringSSL `RSA` object, which BoringSSL documents as safe for
/// concurrent private-key operations). The struct only lacks the conformance in swift-crypto.
final class UnsealedPrivateKey: @unchecked Sendable {
    let key: _RSA.Encryption.PrivateKey
    init(_ key: _RSA.Encryption.PrivateKey) { self.key = key }
}

/// What the vault remembers about one key file between calls.
struct CachedKeyFile: Sendable {
    /// The identity of the file these values were read from; nil forces a re-read (set after
    /// this process writes the file).
    var identity: FileIdentity?
    var document: KeyDocument
    /// Parsed private keys by version id. Kept across re-reads only for versions whose sealed
    /// bytes did not change.
    var privateKeys: [String: UnsealedPrivateKey]

    /// The cache for a freshly read document, keeping the parsed keys that still apply.
    func refreshed(document newDocument: KeyDocument, identity newIdentity: FileIdentity) -> CachedKeyFile {
        var kept: [String: UnsealedPrivateKey] = [:]
        for (id, key) in privateKeys {
            if let old = document.version(id), let new = newDocument.version(id),
               old.sealedPrivateKey == new.sealedPrivateKey {
                kept[id] = key
            }
        }
        return CachedKeyFile(identity: newIdentity, document: newDocument, privateKeys: kept)
    }
}
