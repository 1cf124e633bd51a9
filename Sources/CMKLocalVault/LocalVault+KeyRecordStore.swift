import CMKCore
import CMKKeyVaultAPI
import CryptoExtras
import Foundation

/// The local vault as the store of cmk-vault's keys API (``KeyVaultAPI``): each key name is one
/// key document, changed under the vault's lock and replaced atomically like every other change,
/// with its private keys sealed under the master key. Names are case-insensitive in the API, so
/// the document and its file carry the lower-case name and `displayName` keeps the case it was
/// created with. A purge is recorded in the vault's history like `cmkctl keys purge`; the vault's
/// own purge protection is checked again here, whatever the API decided.
extension LocalVault: KeyRecordStore {
    public func entry(_ name: String) throws -> KeyEntry {
        let key = try KeyReference(name)
        guard let file = try cachedFile(key) else { return KeyEntry() }
        return entry(of: file.document, key: key, lastWrite: configuration.clock is SystemWallClock ? file.identity.map(Self.changeTime) : nil)
    }

    public func withEntry<R>(_ name: String, _ body: (inout KeyEntry) throws -> R) throws -> R {
        let key = try KeyReference(name)
        var failure: (any Error)?
        let result: R?
        do {
            result = try mutate(key) { (before: KeyDocument?) throws(VaultError) -> (KeyDocument?, R?) in
            var entry = before.map { self.entry(of: $0, key: key, lastWrite: nil) } ?? KeyEntry()
            let result: R
            do {
                result = try body(&entry)
            } catch {
                failure = error
                throw VaultError(.invalidInput, "the keys API refused the change")
            }
            return (try self.document(for: entry, key: key, before: before), result)
            }
        } catch {
            // The API's own refusal, not the vault's: nothing was written.
            if let failure { throw failure }
            throw error
        }
        // A change may have purged the key or replaced versions: forget its opened private keys (they
        // are opened again when used), so a purged key's material does not stay in memory.
        apiPrivateKeys.withLock { keys in keys = keys.filter { !$0.key.hasPrefix(key.name + "/") } }
        guard let result else { throw VaultError(.corrupt, "the change of key '\(key)' returned nothing") }
        return result
    }

    public func entries() throws -> [KeyEntry] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: keysPath)
        } catch {
            throw VaultError(.misconfigured, "cannot list the local vault's keys directory \(keysPath): \(error.localizedDescription)")
        }
        return try names.filter { $0.hasSuffix(".json") }.sorted().compactMap { file in
            let name = String(file.dropLast(".json".count))
            guard KeyReference.isValid(name), name == name.lowercased() else { return nil }
            let entry = try entry(name)
            return entry.live == nil && entry.deleted == nil ? nil : entry
        }
    }

    // MARK: Mapping

    /// The API's view of a document.
    func entry(of document: KeyDocument, key: KeyReference, lastWrite: Date?) -> KeyEntry {
        let record = KeyRecord(name: document.displayName ?? document.name, versions: document.versions.map { version in
            KeyVersionRecord(
                version: version.id, kty: version.kty ?? "RSA", keySize: version.keySize,
                privateKey: SealedKeyPair(vault: self, key: key, version: version.id, sealed: version.sealedPrivateKey),
                n: version.publicKey.n, e: version.publicKey.e, keyOps: version.keyOps ?? KeyVaultAPI.rsaKeyOperations,
                enabled: version.enabled, notBefore: version.notBefore.map(Self.seconds), expires: version.expires.map(Self.seconds),
                created: Self.seconds(version.created), updated: Self.seconds(version.updated ?? version.created), tags: version.tags)
        }, rotationPolicy: document.rotationPolicy, nearExpiryWarned: document.nearExpiryWarned, expiredWarned: document.expiredWarned)
        guard let deletedDate = document.deletedDate else { return KeyEntry(live: record) }
        let purge = Self.purgeDate(of: document, lastWrite: lastWrite) ?? deletedDate.addingTimeInterval(TimeInterval(configuration.retentionDays) * 86_400)
        return KeyEntry(deleted: DeletedKeyRecord(key: record, deletedDate: Self.seconds(deletedDate), scheduledPurgeDate: Self.seconds(purge)))
    }

    /// The document for what the API left in `entry`; versions the document does not hold yet are
    /// sealed here. Nil (a purge) only for a deleted key, and only when the vault's purge
    /// protection allows it.
    func document(for entry: KeyEntry, key: KeyReference, before: KeyDocument?) throws(VaultError) -> KeyDocument? {
        guard let record = entry.live ?? entry.deleted?.key else {
            guard let before else { return nil }
            guard before.isDeleted else { throw VaultError(.conflict, "key '\(key)' is not deleted; only a deleted key can be purged") }
            if configuration.purgeProtection, let purge = Self.purgeDate(of: before, lastWrite: try lastWrite(key)), now < purge {
                throw VaultError(.conflict, "key '\(key)' is under purge protection until \(purge.ISO8601Format())")
            }
            return nil
        }
        var versions: [KeyDocument.StoredVersion] = []
        for version in record.versions {
            var stored: KeyDocument.StoredVersion
            if let existing = before?.version(version.version) {
                stored = existing
            } else {
                stored = try seal(version, key: key)
            }
            stored.enabled = version.enabled
            stored.notBefore = version.notBefore.map(Self.date)
            stored.expires = version.expires.map(Self.date)
            stored.keyOps = version.keyOps
            stored.tags = version.tags
            stored.updated = Self.date(version.updated)
            stored.kty = version.kty
            versions.append(stored)
        }
        var document = before ?? KeyDocument(format: KeyDocument.currentFormat, name: key.name, versions: versions)
        document.versions = versions
        document.displayName = record.name == key.name ? nil : record.name
        document.rotationPolicy = record.rotationPolicy
        document.nearExpiryWarned = record.nearExpiryWarned
        document.expiredWarned = record.expiredWarned
        if let deleted = entry.deleted {
            document.deletedDate = Self.date(deleted.deletedDate)
            document.scheduledPurgeDate = Self.date(deleted.scheduledPurgeDate)
        } else {
            document.deletedDate = nil
            document.scheduledPurgeDate = nil
        }
        return document
    }

    /// A version the API generated in memory, sealed under the master key.
    private func seal(_ version: KeyVersionRecord, key: KeyReference) throws(VaultError) -> KeyDocument.StoredVersion {
        let privateKey: _RSA.Encryption.PrivateKey
        do {
            privateKey = try version.privateKey.privateKey()
        } catch {
            throw VaultError(.corrupt, "the new version \(version.version) of key '\(key)' has no private key to seal")
        }
        var der = privateKey.derRepresentation
        let secret = SecretBytes(copying: der)
        der.resetBytes(in: 0..<der.count)
        defer { secret.zeroize() }
        let sealed = try Sealing.seal(secret, key: key.name, version: version.version, masterKey: masterKey)
        return KeyDocument.StoredVersion(
            id: version.version, created: Self.date(version.created), enabled: version.enabled, notBefore: nil, expires: nil,
            keySize: version.keySize, publicKey: .init(n: version.n, e: version.e), sealedPrivateKey: sealed)
    }

    /// Opens a sealed private key for the API (RSA-OAEP, RSA-OAEP-256, RSA1_5 need swift-crypto's
    /// key, not the libcrypto one the daemon's unwrap uses).
    /// Parsed keys are kept (``LocalVault/apiPrivateKeys``) for as long as the sealed bytes they
    /// came from are unchanged.
    func openPrivateKey(_ key: KeyReference, version: String, sealed: KeyDocument.SealedBox) throws(VaultError) -> _RSA.Encryption.PrivateKey {
        let slot = key.name + "/" + version
        if let cached = apiPrivateKeys.withLock({ $0[slot] }), cached.sealed == sealed { return cached.key.key }
        let der = try Sealing.open(sealed, key: key.name, version: version, masterKey: masterKey, path: path(of: key))
        defer { der.zeroize() }
        let parsed: _RSA.Encryption.PrivateKey
        do {
            parsed = try der.withUnsafeBytes { try _RSA.Encryption.PrivateKey(derRepresentation: $0) }
        } catch {
            throw VaultError(.corrupt, "key file \(path(of: key)): the private key of key '\(key)' version \(version) does not parse")
        }
        apiPrivateKeys.withLock { $0[slot] = (sealed: sealed, key: SharedPrivateKey(parsed)) }
        return parsed
    }

    static func seconds(_ date: Date) -> Int { Int(date.timeIntervalSince1970.rounded(.down)) }
    static func date(_ seconds: Int) -> Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }
}

/// A version's private key as the local vault keeps it: sealed, opened when an operation needs it.
struct SealedKeyPair: KeyPairHandle {
    let vault: LocalVault
    let key: KeyReference
    let version: String
    let sealed: KeyDocument.SealedBox

    func privateKey() throws -> _RSA.Encryption.PrivateKey {
        try vault.openPrivateKey(key, version: version, sealed: sealed)
    }
}
