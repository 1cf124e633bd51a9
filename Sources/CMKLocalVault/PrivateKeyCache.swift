import CMKCore
import CMKEnvelope
import Foundation

/// What the vault remembers about one key file between calls.
struct CachedKeyFile: Sendable {
    /// The identity of the file these values were read from; nil forces a re-read (set after
    /// this process writes the file).
    var identity: FileIdentity?
    var document: KeyDocument
    /// Parsed private keys by version id (in the system's libcrypto; shared by concurrent
    /// unwraps, see ``RSAOAEPPrivateKey``). Kept across re-reads only for versions whose sealed
    /// bytes did not change.
    var privateKeys: [String: RSAOAEPPrivateKey]

    /// The cache for a freshly read document, keeping the parsed keys that still apply.
    func refreshed(document newDocument: KeyDocument, identity newIdentity: FileIdentity) -> CachedKeyFile {
        var kept: [String: RSAOAEPPrivateKey] = [:]
        for (id, key) in privateKeys {
            if let old = document.version(id), let new = newDocument.version(id),
               old.sealedPrivateKey == new.sealedPrivateKey {
                kept[id] = key
            }
        }
        return CachedKeyFile(identity: newIdentity, document: newDocument, privateKeys: kept)
    }
}
