import CMKCore
import CPKCS11
import Foundation

/// Key management on the token (`cmkctl keys …`): versions are generated inside the token,
/// sensitive and never extractable; a pull disables every version on the token and records it.
extension PKCS11KeyVault: KeyVaultAdministration {
    /// Creates the key with its first version: an AES-256 key (SPEC §2; `size` is not used) or, with
    /// `wrap-algorithm: RSA-OAEP-256`, an RSA key pair of `size`.
    public func createKey(_ key: KeyReference, size: RSAKeySize) async throws -> KeyVersion {
        try await token("creating key '\(key)'") { session in
            guard try self.versionObjects(key, session).isEmpty else {
                throw Refusal(VaultError(.conflict, "key '\(key)' already exists on the token (AES keys labelled '\(key)')"))
            }
            let existing = try self.record(key, session)
            return try self.generateVersion(key, size: size, record: KeyRecord(), existing: existing?.handle, session)
        }
    }

    public func rotateKey(_ key: KeyReference) async throws -> KeyVersion {
        try await token("rotating key '\(key)'") { session in
            let (existing, record) = try self.presentRecord(key, session)
            return try self.generateVersion(key, size: try self.currentRSASize(key, session), record: record, existing: existing, session)
        }
    }

    public func updateVersion(_ key: KeyReference, version: String, _ update: KeyVersionUpdate) async throws -> KeyVersion {
        try await token("updating version \(version) of key '\(key)'") { session in
            let (existing, record) = try self.presentRecord(key, session)
            guard let bytes = VersionID.bytes(version), var object = try self.versionObjects(key, id: bytes, session).first else {
                throw Refusal(VaultError(.notFound, "key '\(key)' has no version '\(version)' on the token"))
            }
            var updated = record
            var dates = self.keyVersion(object, record)
            dates.notBefore = update.notBefore.applied(to: dates.notBefore)
            dates.expires = update.expires.applied(to: dates.expires)
            updated.versions[object.id] = KeyRecord.Dates(created: dates.created, notBefore: dates.notBefore, expires: dates.expires)
            try self.writeRecord(updated, key, existing: existing, session)
            if let enabled = update.enabled {
                try session.setAttributes(object.enabling(enabled), of: object.handle)
            }
            object = try self.versionObjects(key, id: bytes, session).first ?? object
            return self.keyVersion(object, updated)
        }
    }

    /// Pulls the key: records the deletion (date, scheduled purge, the enabled versions), then sets
    /// `CKA_UNWRAP`/`CKA_WRAP` false on every version so that the token itself refuses them.
    public func deleteKey(_ key: KeyReference) async throws -> DeletedKey {
        try await token("pulling key '\(key)'") { session in
            let objects = try self.versionObjects(key, session)
            guard !objects.isEmpty else { throw Refusal(VaultError(.notFound, "key '\(key)' does not exist on the token")) }
            let existing = try self.record(key, session)
            if let deletion = existing?.record.deleted {
                // A pull that stopped between its two steps is completed, then reported as a conflict.
                for object in objects where object.enabled {
                    try session.setAttributes(object.enabling(false), of: object.handle)
                }
                throw Refusal(VaultError(.conflict, "key '\(key)' is already pulled (deleted \(deletion.date.ISO8601Format()))"))
            }
            var record = existing?.record ?? KeyRecord()
            for object in objects where record.versions[object.id] == nil {
                let version = self.keyVersion(object, nil)
                record.versions[object.id] = KeyRecord.Dates(created: version.created, notBefore: version.notBefore, expires: version.expires)
            }
            let date = KeyRecord.normalised(self.now)
            let deletion = KeyRecord.Deletion(date: date, scheduledPurge: date.addingTimeInterval(Double(self.configuration.retentionDays) * 86_400),
                                              enabled: objects.filter(\.enabled).map(\.id).sorted())
            record.deleted = deletion
            try self.writeRecord(record, key, existing: existing?.handle, session)
            for object in objects where object.enabled {
                try session.setAttributes(object.enabling(false), of: object.handle)
            }
            let versions = objects.map { self.keyVersion($0, record, enabled: deletion.enabled.contains($0.id)) }
            return DeletedKey(key: key, deletedDate: deletion.date, scheduledPurgeDate: deletion.scheduledPurge,
                              versions: KeyState(key: key, versions: versions).versions)
        }
    }

    /// Restores a pulled key: enables again exactly the versions that were enabled, then clears the deletion.
    public func recoverKey(_ key: KeyReference) async throws -> KeyState {
        try await token("restoring key '\(key)'") { session in
            let (handle, record, deletion) = try self.deletedRecord(key, session, operation: "restore")
            let objects = try self.versionObjects(key, session)
            for object in objects where deletion.enabled.contains(object.id) {
                try session.setAttributes(object.enabling(true), of: object.handle)
            }
            var restored = record
            restored.deleted = nil
            try self.writeRecord(restored, key, existing: handle, session)
            guard case .present(let state) = try self.snapshot(key, session) else {
                throw Refusal(VaultError(.corrupt, "key '\(key)' is not present after its restore"))
            }
            return state
        }
    }

    /// Destroys every version object and the record (crypto-shredding on the token): refused before
    /// the scheduled purge date while purge protection is on.
    public func purgeKey(_ key: KeyReference) async throws {
        try await token("purging key '\(key)'") { session in
            let (handle, _, deletion) = try self.deletedRecord(key, session, operation: "purge")
            if self.configuration.purgeProtection, self.now < deletion.scheduledPurge {
                throw Refusal(VaultError(.conflict, "key '\(key)' is protected from purge until \(deletion.scheduledPurge.ISO8601Format()) (purge protection is on)"))
            }
            for object in try self.versionObjects(key, session) {
                if object.kind == .rsa, let publicKey = try session.find(Self.publicKeyTemplate(key, id: object.idBytes)).first {
                    try session.destroy(publicKey)
                }
                try session.destroy(object.handle)
            }
            try session.destroy(handle)
        }
    }

    // MARK: Helpers

    /// A new version generated inside the token: an AES-256 key (A256KWP) or, with
    /// `wrap-algorithm: RSA-OAEP-256`, an RSA key pair of `size` whose private key is sensitive,
    /// never extractable and may only decrypt; its public key may only encrypt.
    private func generateVersion(_ key: KeyReference, size: RSAKeySize, record: KeyRecord, existing: CK_OBJECT_HANDLE?,
                                 _ session: PKCS11Session) throws -> KeyVersion {
        let created = KeyRecord.normalised(now)
        let id = VersionID.make(at: created)
        if configuration.wrapAlgorithm == .rsaOAEP256 {
            let common: [PKCS11Attribute] = [.ulong(CKA_KEY_TYPE, CKK_RSA), .bool(CKA_TOKEN, true), .text(CKA_LABEL, key.name),
                                             PKCS11Attribute(CKA_ID, id), .bool(CKA_MODIFIABLE, true)]
            _ = try session.generateRSAKeyPair(
                public: common + [.ulong(CKA_CLASS, CKO_PUBLIC_KEY), .ulong(CKA_MODULUS_BITS, UInt(size.rawValue)),
                                  PKCS11Attribute(CKA_PUBLIC_EXPONENT, [0x01, 0x00, 0x01]), .bool(CKA_PRIVATE, false),
                                  .bool(CKA_ENCRYPT, true), .bool(CKA_WRAP, false), .bool(CKA_VERIFY, false)],
                private: common + [.ulong(CKA_CLASS, CKO_PRIVATE_KEY), .bool(CKA_PRIVATE, true), .bool(CKA_SENSITIVE, true),
                                   .bool(CKA_EXTRACTABLE, false), .bool(CKA_DECRYPT, true), .bool(CKA_UNWRAP, false),
                                   .bool(CKA_SIGN, false), .bool(CKA_DERIVE, false)])
        } else {
            try generateAESVersion(key, id: id, session)
        }
        var updated = record
        updated.versions[VersionID.hex(id)] = KeyRecord.Dates(created: created)
        try writeRecord(updated, key, existing: existing, session)
        return KeyVersion(id: VersionID.hex(id), created: created)
    }

    /// The modulus size of the newest RSA version (a rotation keeps it), 3072 bits when there is none.
    private func currentRSASize(_ key: KeyReference, _ session: PKCS11Session) throws -> RSAKeySize {
        guard let newest = try versionObjects(key, session).filter({ $0.kind == .rsa }).max(by: { $0.idBytes.lexicographicallyPrecedes($1.idBytes) }),
              let handle = try session.find(Self.publicKeyTemplate(key, id: newest.idBytes)).first,
              let bits = try session.attributes([CKA_MODULUS], of: handle)[CKA_MODULUS],
              let size = RSAKeySize(rawValue: bits.drop(while: { $0 == 0 }).count * 8) else { return .bits3072 }
        return size
    }

    private func generateAESVersion(_ key: KeyReference, id: [UInt8], _ session: PKCS11Session) throws {
        _ = try session.generateAESKey([
            .ulong(CKA_CLASS, CKO_SECRET_KEY), .ulong(CKA_KEY_TYPE, CKK_AES), .ulong(CKA_VALUE_LEN, 32), .bool(CKA_TOKEN, true),
            .bool(CKA_PRIVATE, true), .bool(CKA_SENSITIVE, true), .bool(CKA_EXTRACTABLE, false), .bool(CKA_MODIFIABLE, true),
            .text(CKA_LABEL, key.name), PKCS11Attribute(CKA_ID, id), .bool(CKA_WRAP, true), .bool(CKA_UNWRAP, true),
            .bool(CKA_ENCRYPT, false), .bool(CKA_DECRYPT, false), .bool(CKA_SIGN, false), .bool(CKA_VERIFY, false),
            .bool(CKA_DERIVE, false),
        ])
    }

    /// The record of a present key (an empty one when the versions were made with the HSM's tools).
    private func presentRecord(_ key: KeyReference, _ session: PKCS11Session) throws -> (CK_OBJECT_HANDLE?, KeyRecord) {
        guard try !versionObjects(key, session).isEmpty else {
            throw Refusal(VaultError(.notFound, "key '\(key)' does not exist on the token"))
        }
        let existing = try record(key, session)
        if existing?.record.deleted != nil {
            throw Refusal(VaultError(.deleted, "key '\(key)' is pulled (deleted) on the token; restore it first"))
        }
        return (existing?.handle, existing?.record ?? KeyRecord())
    }

    private func deletedRecord(_ key: KeyReference, _ session: PKCS11Session, operation: String) throws
        -> (CK_OBJECT_HANDLE, KeyRecord, KeyRecord.Deletion) {
        guard try !versionObjects(key, session).isEmpty else {
            throw Refusal(VaultError(.notFound, "there is no pulled key '\(key)' on the token to \(operation)"))
        }
        guard let existing = try record(key, session), let deletion = existing.record.deleted else {
            throw Refusal(VaultError(.conflict, "key '\(key)' is not pulled; only a pulled key can be \(operation == "purge" ? "purged" : "restored")"))
        }
        return (existing.handle, existing.record, deletion)
    }
}
