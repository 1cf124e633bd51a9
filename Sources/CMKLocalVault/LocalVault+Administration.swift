import CMKCore
import CMKEnvelope
import CryptoExtras
import Foundation

extension LocalVault {
    /// Creates the key with its first version. Refused (`.conflict`) when the key exists, is
    /// soft-deleted, or the vault's history says it was purged or its file vanished: see
    /// ``replaceLostKey(_:size:)``.
    public func createKey(_ key: KeyReference, size: RSAKeySize) async throws -> KeyVersion {
        try await create(key, size: size, mode: .byOperator).version
    }

    /// How a creation relates to the key's history.
    enum CreationMode {
        /// `createKey`: anything but a key the history says was purged or lost.
        case byOperator
        /// `createKeyIfNeverHeld`: only a key the vault has never held.
        case first
        /// `replaceLostKey`: only a key that was purged or lost (or whose history is unknown).
        case replacement
    }

    /// Creates the key if `mode` admits its history; returns the version and that history.
    func create(_ key: KeyReference, size: RSAKeySize, mode: CreationMode) async throws -> (version: KeyVersion, history: KeyHistory) {
        // Fail fast before the (slow) key generation; the check is repeated under the lock.
        if let existing = try readDocument(key) { throw conflict(key, existing) }
        let pending = try generateVersion(key, size: size)
        return try mutate(key) { (document: KeyDocument?) throws(VaultError) -> (KeyDocument?, (version: KeyVersion, history: KeyHistory)) in
            if let document { throw self.conflict(key, document) }
            let history = try VaultMarker.read(self.markerPath).absence(of: key.name)
            try self.admit(key, history, mode)
            let version = pending.finished(created: KeyDocument.stored(self.now))
            return (KeyDocument(format: KeyDocument.currentFormat, name: key.name, versions: [version]), (version.keyVersion, history))
        }
    }

    private func admit(_ key: KeyReference, _ history: KeyHistory, _ mode: CreationMode) throws(VaultError) {
        let lost: String
        switch history {
        case .neverHeld:
            guard mode != .replacement else {
                throw VaultError(.conflict, "key '\(key)' was never held by this vault, so there is nothing to replace: create it with `cmkctl keys create`")
            }
            return
        case .unknown, .present:
            guard mode == .first else { return }
            throw VaultError(.conflict, "key '\(key)' may have been held by this vault before it kept a history of its keys; create it explicitly with `cmkctl keys create`")
        case .purged(let date):
            lost = "was purged on \(date.ISO8601Format())"
        case .vanished(let created):
            lost = "was created on \(created.ISO8601Format()) and its file \(path(of: key)) is gone (removed outside the vault; restore it from a backup if you can)"
        }
        guard mode == .replacement else {
            throw VaultError(.conflict, "key '\(key)' \(lost): creating it again makes a new key that cannot read anything encrypted under the old one; if that is intended, run `cmkctl keys create --replace-purged`")
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
            // Never in the past of the key's own history, whatever this process's clock says.
            let now = KeyDocument.stored(max(self.now, document.historyFloor, try self.lastWrite(key) ?? .distantPast))
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
            if self.configuration.purgeProtection,
               let date = Self.purgeDate(of: document, lastWrite: try self.lastWrite(key)), self.now < date {
                throw VaultError(.conflict, "key '\(key)' is protected from purge until \(date.ISO8601Format()) (purge protection is on; the retention counts from the deletion or the key's last recorded change, whichever is later, so a clock that is or was behind cannot shorten it)")
            }
            return (nil, ())
        }
    }

    // MARK: Helpers

    /// Runs a read-modify-write of one key file under the vault's exclusive lock. `body` gets the
    /// document as it is on disk now and returns the new one (nil removes the file). A creation
    /// and a purge are recorded in the vault's history (`vault.json`) first, so that a crash can
    /// never leave a key that the history forgot.
    func mutate<R>(_ key: KeyReference, _ body: (KeyDocument?) throws(VaultError) -> (KeyDocument?, R)) throws(VaultError) -> R {
        let path = path(of: key)
        let result = try VaultFiles.withExclusiveLock(lockPath) { () throws(VaultError) -> R in
            let before = try readDocument(key)
            var (updated, result) = try body(before)
            let now = KeyDocument.stored(self.now)
            if let document = updated {
                updated?.written = KeyDocument.stored(max(now, before?.historyFloor ?? .distantPast, document.historyFloor))
            }
            if let updated {
                let created = updated.versions.first?.created ?? now
                if before == nil {
                    try VaultMarker.update(markerPath, key: key.name, now: now) { record in
                        // A record left by a creation that never finished is not a replacement.
                        let replaced = record.flatMap { $0.creating == true ? $0.replaced : ($0.replaced ?? 0) + 1 }
                        record = .init(created: created, creating: true, purged: nil, replaced: replaced)
                    }
                }
                try VaultFiles.atomicWrite(try updated.encoded(), to: path)
                if before == nil {
                    try VaultMarker.update(markerPath, key: key.name, now: now) { $0?.creating = nil }
                }
            } else {
                let created = before?.versions.first?.created ?? now
                try VaultMarker.update(markerPath, key: key.name, now: now) { record in
                    record = .init(created: record?.created ?? created, creating: nil, purged: now, replaced: record?.replaced)
                }
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

    /// When the key's retention ends: the scheduled purge date, or later when the deletion date is
    /// in the past of the key's own history (`lastWrite` included): a document deleted by a process
    /// whose clock was behind. Nil when the key is not deleted or has no scheduled purge.
    static func purgeDate(of document: KeyDocument, lastWrite: Date?) -> Date? {
        guard let deleted = document.deletedDate, let scheduled = document.scheduledPurgeDate else { return nil }
        var reckoned = max(deleted, document.historyFloor)
        // The write that recorded the deletion follows it by milliseconds (or by a file server's
        // clock skew); only a witness well after the recorded date shows a clock that was behind.
        if let lastWrite, lastWrite > reckoned.addingTimeInterval(lastWriteTolerance) { reckoned = lastWrite }
        return max(scheduled, reckoned.addingTimeInterval(max(0, scheduled.timeIntervalSince(deleted))))
    }

    /// How much later than a recorded date the kernel's write time may be without moving it.
    static let lastWriteTolerance: TimeInterval = 60

    /// When the key file was last written by the kernel's clock (its inode change time, which no
    /// process can set, nor an `LD_PRELOAD` clock such as libfaketime shift), or nil when the file
    /// is absent or the vault runs on an injected clock, which the kernel's clock does not measure.
    func lastWrite(_ key: KeyReference) throws(VaultError) -> Date? {
        guard configuration.clock is SystemWallClock, let identity = try VaultFiles.identity(of: path(of: key)) else { return nil }
        return Self.changeTime(identity)
    }

    static func changeTime(_ identity: FileIdentity) -> Date {
        Date(timeIntervalSince1970: TimeInterval(identity.changedSeconds) + TimeInterval(identity.changedNanoseconds) / 1e9)
    }

    /// The document on disk, bypassing the cache.
    func readDocument(_ key: KeyReference) throws(VaultError) -> KeyDocument? {
        let path = path(of: key)
        guard let (data, _) = try VaultFiles.readVaultFile(path, what: "key file") else { return nil }
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
