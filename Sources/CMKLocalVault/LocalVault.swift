import CMKCore
import CMKEnvelope
import CMKKeyVaultAPI
import Crypto
import CryptoExtras
import Foundation
import Synchronization

/// The embedded default vault provider (SPEC §10): RSA root keys kept in a directory, one JSON
/// document per key, every private key sealed with AES-256-GCM under a 32-byte master key.
///
/// Semantics follow Azure Key Vault (SPEC §3): versions with enabled/not-before/expires, wrap
/// only inside [not-before, expires) and only when enabled, unwrap whenever enabled, soft delete
/// with a retention period, recovery, and purge protection. Mutations hold an exclusive `flock`
/// on the vault's lock file and replace files atomically, so several processes can share a
/// vault directory. See `docs/providers/local.md`.
public final class LocalVault: KeyVaultAdministration {
    /// The configuration the vault was opened with.
    public let configuration: LocalVaultConfiguration

    /// Provider `local`: exports public keys, wraps in the vault, RSA-OAEP-256, manages keys.
    public let capabilities = VaultCapabilities(provider: "local", exportsPublicKey: true, wrapsInVault: true,
                                                algorithms: [.rsaOAEP256], managesKeys: true)

    /// In secret memory, left out of core dumps (``SecretMemory``).
    let masterKey: SecretBytes
    let directoryPath: String
    let keysPath: String
    let lockPath: String
    /// `vault.json`: the master-key check and the history of the vault's keys.
    let markerPath: String
    let cache = Mutex<[String: CachedKeyFile]>([:])
    /// Private keys opened for cmk-vault's keys API, by `name/version`, with the sealed bytes
    /// they came from (``openPrivateKey(_:version:sealed:)``).
    let apiPrivateKeys = Mutex<[String: (sealed: KeyDocument.SealedBox, key: SharedPrivateKey)]>([:])

    /// Opens (creating if needed) the vault directory and checks the master key against it.
    ///
    /// Throws `.misconfigured` for bad retention, unsafe directory or master key permissions, a
    /// missing or malformed master key, or a master key that does not belong to this vault.
    public init(configuration: LocalVaultConfiguration) throws(VaultError) {
        try configuration.validate()
        self.configuration = configuration
        directoryPath = configuration.directory.standardizedFileURL.path
        keysPath = directoryPath + "/keys"
        lockPath = directoryPath + "/.lock"
        markerPath = directoryPath + "/vault.json"
        masterKey = try MasterKey.load(configuration.masterKey)
        try VaultFiles.prepareDirectory(directoryPath, what: "local vault directory")
        try VaultFiles.prepareDirectory(keysPath, what: "local vault keys directory")
        try VaultMarker.checkOrCreate(at: markerPath, keysDirectory: keysPath, masterKey: masterKey,
                                      source: configuration.masterKey)
    }

    var now: Date { configuration.clock.now() }

    func path(of key: KeyReference) -> String { "\(keysPath)/\(key.name).json" }

    // MARK: KeyVault

    public func snapshot(of key: KeyReference) async throws -> KeySnapshot {
        guard let file = try cachedFile(key) else { return .missing(key) }
        let document = file.document
        if let deletedDate = document.deletedDate {
            let lastWrite = configuration.clock is SystemWallClock ? file.identity.map(Self.changeTime) : nil
            return .deleted(DeletedKey(key: key, deletedDate: deletedDate, scheduledPurgeDate: Self.purgeDate(of: document, lastWrite: lastWrite),
                                       versions: document.keyVersions()))
        }
        return .present(KeyState(key: key, versions: document.keyVersions()))
    }

    public func publicKey(of key: KeyReference, version: String) async throws -> PublicKeyMaterial {
        try usableVersion(key, version).stored.publicKey.material
    }

    public func wrap(_ dek: SecretBytes, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> Data {
        try requireSupported(algorithm)
        let stored = try usableVersion(key, version).stored
        if let refusal = stored.keyVersion.wrapRefusal(at: now) {
            switch refusal {
            case .disabled:
                throw VaultError(.disabled, "version \(version) of key '\(key)' is disabled; it cannot wrap")
            case .notYetValid, .expired:
                throw VaultError(.invalidInput, "version \(version) of key '\(key)' may not wrap now: it is \(refusal); wrap with a version that is valid now")
            }
        }
        return try DEKWrapping.wrap(dek, with: stored.publicKey.material)
    }

    public func unwrap(_ wrappedKey: Data, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> SecretBytes {
        try requireSupported(algorithm)
        let (stored, identity) = try usableVersion(key, version)
        // Expired and not-yet-valid versions still unwrap: only `enabled` matters (SPEC §3).
        guard stored.enabled else {
            throw VaultError(.disabled, "version \(version) of key '\(key)' is disabled; it cannot unwrap")
        }
        let privateKey = try privateKey(key, stored, identity: identity)
        return try privateKey.unwrap(wrappedKey)
    }

    // MARK: Reading

    private func requireSupported(_ algorithm: WrapAlgorithm) throws(VaultError) {
        guard algorithm == .rsaOAEP256 else {
            throw VaultError(.unsupported, "the local vault wraps only with RSA-OAEP-256, not \(algorithm.rawValue)")
        }
    }

    /// The version of a present key, with the identity of the file it was read from.
    private func usableVersion(_ key: KeyReference, _ version: String) throws(VaultError)
        -> (stored: KeyDocument.StoredVersion, identity: FileIdentity?) {
        guard let file = try cachedFile(key) else {
            throw VaultError(.notFound, "key '\(key)' does not exist in the local vault")
        }
        guard !file.document.isDeleted else {
            throw VaultError(.deleted, "key '\(key)' is deleted; recover it to use its versions")
        }
        guard let stored = file.document.version(version) else {
            throw VaultError(.notFound, "key '\(key)' has no version '\(version)'")
        }
        return (stored, file.identity)
    }

    /// The key's document, re-read only when the file changed (a `stat` per call). Nil if the
    /// key file does not exist.
    func cachedFile(_ key: KeyReference) throws(VaultError) -> CachedKeyFile? {
        let path = path(of: key)
        guard let identity = try VaultFiles.identity(of: path) else {
            _ = cache.withLock { $0.removeValue(forKey: key.name) }
            return nil
        }
        if let cached = cache.withLock({ $0[key.name] }), cached.identity == identity { return cached }
        guard let (data, readIdentity) = try VaultFiles.readVaultFile(path, what: "key file") else {
            _ = cache.withLock { $0.removeValue(forKey: key.name) }
            return nil
        }
        let document = try KeyDocument.decode(data, path: path, expectedName: key.name)
        return cache.withLock { entries in
            let fresh = entries[key.name]?.refreshed(document: document, identity: readIdentity)
                ?? CachedKeyFile(identity: readIdentity, document: document, privateKeys: [:])
            entries[key.name] = fresh
            return fresh
        }
    }

    /// The parsed private key of a version, unsealed once per file state.
    private func privateKey(_ key: KeyReference, _ stored: KeyDocument.StoredVersion, identity: FileIdentity?) throws(VaultError) -> RSAOAEPPrivateKey {
        if let cached = cache.withLock({ entries -> RSAOAEPPrivateKey? in
            guard let entry = entries[key.name], entry.identity == identity,
                  entry.document.version(stored.id)?.sealedPrivateKey == stored.sealedPrivateKey else { return nil }
            return entry.privateKeys[stored.id]
        }) {
            return cached
        }
        let der = try Sealing.open(stored.sealedPrivateKey, key: key.name, version: stored.id, masterKey: masterKey, path: path(of: key))
        defer { der.zeroize() }
        let unsealed: RSAOAEPPrivateKey
        do {
            unsealed = try RSAOAEPPrivateKey(derRepresentation: der)
        } catch {
            throw VaultError(.corrupt, "key file \(path(of: key)): the private key of key '\(key)' version \(stored.id) does not parse")
        }
        cache.withLock { entries in
            if entries[key.name]?.identity == identity,
               entries[key.name]?.document.version(stored.id)?.sealedPrivateKey == stored.sealedPrivateKey {
                entries[key.name]?.privateKeys[stored.id] = unsealed
            }
        }
        return unsealed
    }
}
