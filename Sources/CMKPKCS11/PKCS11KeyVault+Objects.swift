import CMKCore
import CPKCS11
import Foundation

/// Reading the token's objects: version keys and the key record.
extension PKCS11KeyVault {
    /// One version's key object as the token holds it.
    struct VersionObject {
        /// An AES-256 secret key (A256KWP on the token) or an RSA private key (RSA-OAEP-256).
        enum Kind { case aes, rsa }
        let kind: Kind
        let handle: CK_OBJECT_HANDLE
        let idBytes: [UInt8]
        var id: String { VersionID.hex(idBytes) }
        /// `CKA_UNWRAP` of an AES key, `CKA_DECRYPT` of an RSA private key: a version is enabled
        /// exactly when the token lets it unwrap.
        let enabled: Bool

        /// The attributes that enable or disable it on the token.
        func enabling(_ enabled: Bool) -> [PKCS11Attribute] {
            kind == .aes ? [.bool(CKA_UNWRAP, enabled), .bool(CKA_WRAP, enabled)] : [.bool(CKA_DECRYPT, enabled)]
        }
    }

    /// The template that finds a key's version objects of one kind (AES secret keys or RSA private
    /// keys labelled with its name).
    static func versionTemplate(_ key: KeyReference, kind: VersionObject.Kind, id: [UInt8]? = nil) -> [PKCS11Attribute] {
        var template: [PKCS11Attribute] = kind == .aes
            ? [.ulong(CKA_CLASS, CKO_SECRET_KEY), .ulong(CKA_KEY_TYPE, CKK_AES)]
            : [.ulong(CKA_CLASS, CKO_PRIVATE_KEY), .ulong(CKA_KEY_TYPE, CKK_RSA)]
        template += [.bool(CKA_TOKEN, true), .text(CKA_LABEL, key.name)]
        if let id { template.append(PKCS11Attribute(CKA_ID, id)) }
        return template
    }

    /// The public-key object of an RSA version (same label and id as its private key).
    static func publicKeyTemplate(_ key: KeyReference, id: [UInt8]) -> [PKCS11Attribute] {
        [.ulong(CKA_CLASS, CKO_PUBLIC_KEY), .ulong(CKA_KEY_TYPE, CKK_RSA), .bool(CKA_TOKEN, true), .text(CKA_LABEL, key.name), PKCS11Attribute(CKA_ID, id)]
    }

    static func recordTemplate(_ key: KeyReference) -> [PKCS11Attribute] {
        [.ulong(CKA_CLASS, CKO_DATA), .bool(CKA_TOKEN, true), .text(CKA_LABEL, key.name), .text(CKA_APPLICATION, KeyRecord.application)]
    }

    func versionObjects(_ key: KeyReference, id: [UInt8]? = nil, _ session: PKCS11Session) throws(PKCS11Failure) -> [VersionObject] {
        var objects: [VersionObject] = []
        for kind in [VersionObject.Kind.aes, .rsa] {
            let permission = kind == .aes ? CKA_UNWRAP : CKA_DECRYPT
            for handle in try session.find(Self.versionTemplate(key, kind: kind, id: id)) {
                let values = try session.attributes([CKA_ID, permission], of: handle)
                objects.append(VersionObject(kind: kind, handle: handle, idBytes: values[CKA_ID] ?? [], enabled: values[permission] == [1]))
            }
        }
        return objects
    }

    /// The key's record: the one with the highest revision when an interrupted write left two.
    func record(_ key: KeyReference, _ session: PKCS11Session) throws -> (handle: CK_OBJECT_HANDLE, record: KeyRecord)? {
        var newest: (handle: CK_OBJECT_HANDLE, record: KeyRecord)?
        for handle in try session.find(Self.recordTemplate(key)) {
            let value = try session.attributes([CKA_VALUE], of: handle)[CKA_VALUE] ?? []
            let record = try KeyRecord.decode(value, key: key)
            if newest == nil || record.revision > newest!.record.revision { newest = (handle, record) }
        }
        return newest
    }

    /// Replaces the record: SoftHSM (like the standard's tokens may) makes a data object's
    /// CKA_VALUE read-only, so the new revision is created first and then the old one destroyed;
    /// an interruption between the two leaves both, and the higher revision wins.
    func writeRecord(_ record: KeyRecord, _ key: KeyReference, existing: CK_OBJECT_HANDLE?, _ session: PKCS11Session) throws(PKCS11Failure) {
        var next = record
        next.revision += 1
        _ = try session.create(Self.recordTemplate(key) + [.bool(CKA_PRIVATE, true), PKCS11Attribute(CKA_VALUE, next.encoded())])
        for handle in try session.find(Self.recordTemplate(key)) where handle != existing {
            // Leftovers of an interrupted write (older revisions) go too; the one just made stays.
            let value = (try? session.attributes([CKA_VALUE], of: handle)[CKA_VALUE]) ?? nil
            if let value, let old = try? KeyRecord.decode(value, key: key), old.revision < next.revision { try session.destroy(handle) }
        }
        if let existing { try session.destroy(existing) }
    }

    /// The version as SPEC §3 sees it: its dates from the record. A version the record does not
    /// know (made with the HSM's own tools) has no not-before or expiry, and its creation from the
    /// id when the id is one of ours, else 1970 (it sorts first). CKA_START_DATE/CKA_END_DATE are
    /// not used (docs/providers/pkcs11.md, "Object mapping").
    func keyVersion(_ object: VersionObject, _ record: KeyRecord?, enabled: Bool? = nil) -> KeyVersion {
        let dates = record?.versions[object.id]
        return KeyVersion(id: object.id, created: dates?.created ?? VersionID.created(object.idBytes) ?? Date(timeIntervalSince1970: 0),
                          enabled: enabled ?? object.enabled, notBefore: dates?.notBefore, expires: dates?.expires)
    }

    func snapshot(_ key: KeyReference, _ session: PKCS11Session) throws -> KeySnapshot {
        let objects = try versionObjects(key, session)
        guard !objects.isEmpty else { return .missing(key) }
        let record = try self.record(key, session)?.record
        if let deletion = record?.deleted {
            let versions = objects.map { keyVersion($0, record, enabled: deletion.enabled.contains($0.id)) }
            return .deleted(DeletedKey(key: key, deletedDate: deletion.date, scheduledPurgeDate: deletion.scheduledPurge,
                                       versions: KeyState(key: key, versions: versions).versions))
        }
        return .present(KeyState(key: key, versions: objects.sorted { $0.idBytes.lexicographicallyPrecedes($1.idBytes) }
            .map { keyVersion($0, record) }))
    }

    /// The version object for a wrap or unwrap: `.notFound` for an unknown key or version,
    /// `.deleted` for a pulled key, `.disabled` for a version whose `CKA_UNWRAP` is false.
    func usableVersion(_ key: KeyReference, _ version: String, _ session: PKCS11Session) throws -> VersionObject {
        if let bytes = VersionID.bytes(version), let object = try versionObjects(key, id: bytes, session).first {
            if object.enabled { return object }
            if try record(key, session)?.record.deleted != nil {
                throw Refusal(VaultError(.deleted, "key '\(key)' is pulled (deleted) on the token; restore it to use its versions"))
            }
            throw Refusal(VaultError(.disabled, "version \(version) of key '\(key)' is disabled on the token (\(object.kind == .aes ? "CKA_UNWRAP" : "CKA_DECRYPT") false)"))
        }
        if try versionObjects(key, session).isEmpty {
            throw Refusal(VaultError(.notFound, "key '\(key)' does not exist on the token (no AES key or RSA private key labelled '\(key)')"))
        }
        if try record(key, session)?.record.deleted != nil {
            throw Refusal(VaultError(.deleted, "key '\(key)' is pulled (deleted) on the token; restore it to use its versions"))
        }
        throw Refusal(VaultError(.notFound, "key '\(key)' has no version '\(version)' on the token"))
    }
}
