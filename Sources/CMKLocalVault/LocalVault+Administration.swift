import CMKCore
import CMKEnvelope
import CryptoExtras
import Foundation

extension LocalVault {
    public func createKey(_ key: KeyReference, size: RSAKeySize) async throws -> KeyVersion {
        // Fail fast before the (slow) key generation; the check is repeated under the lock.
        if let existing = try readDocument(key) { throw conflict(key, existing) }
        let pending = try generateVersion(key, size: size)
        return try mutate(key) { (document: KeyDocument?) throws(VaultError) -> (KeyDocument?, KeyVersion) in
            if let document { throw self.conflict(key, document) }
            let version = pending.finished(created: KeyDocument.stored(self.now))
            return (KeyDocument(format: KeyDocument.currentFormat, name: key.name, versions: [version]), version.keyVersion)
        }
    }

    public func rotateKey(_ key: KeyReference) async throws -> KeyVersion {
        let current = try presentDocument(key, try readDocument(key))
        let size = current.versions.last?.keySize ?? RSAKeySize.bits2048.rawValue
        let pending = try generateVersion(key, size: RSAKeySize(rawValue: size) ?? .bits2048)
        return try mutate(key) { (document: KeyDocument?) throws(VaultError) -> (KeyDocument?, KeyVersion) in
            var document = try self.presentDocument(key, document)
            // Never older than the newest version, so the newest stays current even if the clock steps back.
            let created = max(KeyDocument.stored(self.now), document.versions.last?.created ?? .distantPast)
            let version = pending.finished(created: created)
            document.versions.append(version)
            return (document, version.keyVersion)
        }
    }

    public func updateVersion(_ key: KeyReference, version: String, _ update: KeyVersionUpdate) async throws -> KeyVersion {
        try mutate(key) { (document: KeyDocument?) throws(VaultError) -> (KeyDocument?, KeyVersion) in
            var document = try self.presentDocument(key, document)
            guard let index = document.versions.firstIndex(where: { $0.id == version }) else {
                throw VaultError(.notFound, "key '\(key)' has no version '\(version)'")
            }
            var stored = document.versions[index]
            if let enabled = update.enabled { stored.enabled = enabled }
            stored.notBefore = update.notBefore.applied(to: stored.notBefore).map(KeyDocument.stored)
            stored.expires = update.expires.applied(to: stored.expires).map(KeyDocument.stored)
            document.versions[index] = stored
            return (document, stored.keyVersion)
        }
    }

    public func deleteKey(_ key: KeyReference) async throws -> DeletedKey {
        try mutate(key) { (document: KeyDocument?) throws(VaultError) -> (KeyDocument?, DeletedKey) in
            var document = try self.presentDocument(key, document)
            let now = KeyDocument.stored(self.now)
            let purge = KeyDocument.stored(now.addingTimeInterval(TimeInterval(self.configuration.retentionDays) * 86_400))
            document.deletedDate = now
            document.scheduledPurgeDate = purge
            return (document, DeletedKey(key: key, deletedDate: now, scheduledPurgeDate: purge, versions: document.keyVersions()))
        }
    }

    public func recoverKey(_ key: KeyReference) async throws -> KeyState {
        try mutate(key) { (document: KeyDocument?) throws(VaultError) -> (KeyDocument?, KeyState) in
            var document = try self.deletedDocument(key, document, operation: "recover")
            document.deletedDate = nil
            document.scheduledPurgeDate = nil
            return (document, KeyState(key: key, versions: document.keyVersions()))
        }
    }

    public func purgeKey(_ key: KeyReference) async throws {
        try mutate(key) { (document: KeyDocument?) throws(VaultError) -> (KeyDocument?, Void) in
            let document = try self.deletedDocument(key, document, operation: "purge")
            if self.configuration.purgeProtection, let date = document.scheduledPurgeDate, self.now < date {
                throw VaultError(.conflict, "key '\(key)' is protected from purge until its scheduled purge date \(date.ISO8601Format()) (purge protection is on)")
            }
            return (nil, ())
        }
    }

    // MARK: Helpers

    /// Runs a read-modify-write of one key file under the vault's exclusive lock. `body` gets the
    /// document as it is on disk now and returns the new one (nil removes the file).
    private func mutate<R>(_ key: KeyReference, _ body: (KeyDocument?) throws(VaultError) -> (KeyDocument?, R)) throws(VaultError) -> R {
        let path = path(of: key)
        let result = try VaultFiles.withExclusiveLock(lockPath) { () throws(VaultError) -> R in
            let (updated, result) = try body(try readDocument(key))
            if let updated {
                try VaultFiles.atomicWrite(try updated.encoded(), to: path)
            } else {
                try VaultFiles.remove(path)
            }
            return result
        }
        // Our own write always changes the file; force the next read to look at it.
        cache.withLock { entries in
            if entries[key.name] != nil { entries[key.name]?.identity = nil }
        }
        return result
    }

    /// The document on disk, bypassing the cache.
    func readDocument(_ key: KeyReference) throws(VaultError) -> KeyDocument? {
        let path = path(of: key)
        guard let (data, _) = try VaultFiles.read(path) else { return nil }
        return try KeyDocument.decode(data, path: path, expectedName: key.name)
    }

    private func presentDocument(_ key: KeyReference, _ document: KeyDocument?) throws(VaultError) -> KeyDocument {
        guard let document else { throw VaultError(.notFound, "key '\(key)' does not exist in the local vault") }
        guard !document.isDeleted else { throw VaultError(.deleted, "key '\(key)' is deleted; recover it first") }
        return document
    }

    private func deletedDocument(_ key: KeyReference, _ document: KeyDocument?, operation: String) throws(VaultError) -> KeyDocument {
        guard let document else { throw VaultError(.notFound, "there is no deleted key '\(key)' to \(operation)") }
        guard document.isDeleted else {
            throw VaultError(.conflict, "key '\(key)' is not deleted; only a deleted key can be \(operation == "purge" ? "purged" : "recovered")")
        }
        return document
    }

    private func conflict(_ key: KeyReference, _ document: KeyDocument) -> VaultError {
        document.isDeleted
            ? VaultError(.conflict, "key '\(key)' is deleted but not purged; recover or purge it before creating it again")
            : VaultError(.conflict, "key '\(key)' already exists; rotate it to add a version")
    }

    /// A new RSA key, sealed; only its creation date is set later, under the lock.
    private func generateVersion(_ key: KeyReference, size: RSAKeySize) throws(VaultError) -> PendingVersion {
        let id = Self.newVersionID()
        do {
            let privateKey = try _RSA.Encryption.PrivateKey(keySize: .init(bitCount: size.rawValue))
            var der = privateKey.derRepresentation
            let secret = SecretBytes(copying: der)
            der.resetBytes(in: 0..<der.count)
            defer { secret.zeroize() }
            let primitives = try privateKey.publicKey.getKeyPrimitives()
            let sealed = try Sealing.seal(secret, key: key.name, version: id, masterKey: masterKey)
            return PendingVersion(id: id, keySize: size.rawValue,
                                  publicKey: .init(n: primitives.modulus, e: primitives.publicExponent), sealed: sealed)
        } catch {
            throw VaultError.from(error, "generating an RSA-\(size.rawValue) key for '\(key)' failed")
        }
    }

    /// 32 random lowercase hex digits, like an Azure Key Vault version id.
    static func newVersionID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return String(byte >> 4, radix: 16) + String(byte & 0x0F, radix: 16)
        }.joined()
    }
}

/// A generated, sealed key version waiting for its creation date.
struct PendingVersion {
    var id: String
    var keySize: Int
    var publicKey: KeyDocument.StoredPublicKey
    var sealed: KeyDocument.SealedBox

    func finished(created: Date) -> KeyDocument.StoredVersion {
        .init(id: id, created: created, enabled: true, notBefore: nil, expires: nil, keySize: keySize,
              publicKey: publicKey, sealedPrivateKey: sealed)
    }
}
