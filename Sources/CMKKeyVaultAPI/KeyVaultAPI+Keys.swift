import CMKCore
import Crypto
import CryptoExtras
import Foundation

extension KeyVaultAPI {
    func createKey(_ name: String, body: Data) throws -> ServerResponse {
        let request = try decode(Wire.CreateKey.self, body)
        guard let kty = request.kty else { throw KeyVaultError.badParameter("Property 'kty' is required; accepted values: RSA, RSA-HSM.") }
        guard kty == "RSA" || kty == "RSA-HSM" else {
            throw KeyVaultError.badParameter("The key type '\(kty)' is not supported by this emulator; accepted values: RSA, RSA-HSM.")
        }
        let size = request.key_size ?? 2048
        guard Self.keySizes.contains(size) else {
            throw KeyVaultError.badParameter("The specified RSA key size (\(size)) is not supported; accepted values: 2048, 3072, 4096.")
        }
        if let exponent = request.public_exponent, exponent != 65537 {
            throw KeyVaultError.badParameter("The specified public exponent (\(exponent)) is not supported; accepted value: 65537.")
        }
        let keyOps = try validKeyOperations(request.key_ops) ?? Self.rsaKeyOperations
        let tags = try validTags(request.tags)
        if request.attributes?.exportable == true {
            throw KeyVaultError.badParameter("Exportable keys require a release policy, which this emulator does not support.")
        }
        try validValidity(nbf: request.attributes?.nbf, exp: request.attributes?.exp)
        if try read(name).deleted != nil { throw KeyVaultError.conflictDeleted(name) }

        let record = try newVersion(
            kty: kty, size: size, keyOps: keyOps, enabled: request.attributes?.enabled ?? true,
            nbf: request.attributes?.nbf, exp: request.attributes?.exp, tags: tags)
        try entry(name) { entry in
            if entry.deleted != nil { throw KeyVaultError.conflictDeleted(name) }
            // A new version of an existing key keeps its rotation policy and warnings.
            if entry.live == nil { entry.live = KeyRecord(name: name, versions: [record]) } else { entry.live?.versions.append(record) }
        }
        return .json(200, bundle(name, record))
    }

    /// `POST /keys/{name}/rotate`.
    func rotateKey(_ name: String) throws -> ServerResponse {
        guard let record = try rotate(name, ifCurrent: nil) else { throw KeyVaultError.keyNotFound(name) }
        return .json(200, bundle(name, record))
    }

    /// A rotation, from the API or the rotation policy (one code path): a new version with the
    /// current version's type, size, operations and tags, expiring `expiryTime` after its creation
    /// when the key's policy has one (as Azure does). With `expected`, only while that version is
    /// still the current one (nil otherwise: someone rotated first), so a due policy rotation
    /// happens once however often it is tried. The new version is durable when this returns.
    public func rotate(_ name: String, ifCurrent expected: String?) throws -> KeyVersionRecord? {
        guard let key = try read(name).live else { throw KeyVaultError.keyNotFound(name) }
        if let expected, key.latest.version != expected { return nil }
        let latest = key.latest
        var record = try newVersion(
            kty: latest.kty, size: latest.keySize, keyOps: latest.keyOps, enabled: true, nbf: nil, exp: nil, tags: latest.tags)
        if let expiry = key.rotationPolicy?.expiryTime.flatMap(ISODuration.init) { record.expires = expiry.after(record.created) }
        CrashPoints.hit("key-rotation.before-version")
        let added: Bool = try entry(name) { entry in
            guard entry.live != nil else { throw KeyVaultError.keyNotFound(name) }
            if let expected, entry.live?.latest.version != expected { return false }
            entry.live?.versions.append(record)
            return true
        }
        guard added else { return nil }
        CrashPoints.hit("key-rotation.version-written")
        return record
    }

    func getKey(_ name: String, version: String?) throws -> ServerResponse {
        .json(200, bundle(name, try lookUp(name, version: version)))
    }

    /// The version asked for, or the current one; 404 KeyNotFound as Azure words it.
    func lookUp(_ name: String, version: String?) throws -> KeyVersionRecord {
        guard let key = try read(name).live else { throw KeyVaultError.keyNotFound(name) }
        guard let version else { return key.latest }
        guard let index = key.index(of: version) else { throw KeyVaultError.versionNotFound(name, version) }
        return key.versions[index]
    }

    func updateKey(_ name: String, version: String?, body: Data) throws -> ServerResponse {
        let request = try decode(Wire.UpdateKey.self, body)
        let keyOps = try validKeyOperations(request.key_ops)
        let tags = try validTags(request.tags)
        // An explicit `null` clears `nbf`/`exp` (merge-patch semantics); an absent field keeps it.
        let rawAttributes = ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any])?["attributes"] as? [String: Any]
        let clearsNotBefore = rawAttributes?["nbf"] is NSNull
        let clearsExpiry = rawAttributes?["exp"] is NSNull
        let now = now
        let updated: KeyVersionRecord = try entry(name) { entry in
            guard var key = entry.live else { throw KeyVaultError.keyNotFound(name) }
            let index = try version.map { version in
                guard let index = key.index(of: version) else { throw KeyVaultError.versionNotFound(name, version) }
                return index
            } ?? key.versions.count - 1
            var record = key.versions[index]
            if let keyOps { record.keyOps = keyOps }
            if let tags { record.tags = tags }
            if let attributes = request.attributes {
                if let enabled = attributes.enabled { record.enabled = enabled }
                if let nbf = attributes.nbf { record.notBefore = nbf } else if clearsNotBefore { record.notBefore = nil }
                if let exp = attributes.exp { record.expires = exp } else if clearsExpiry { record.expires = nil }
            }
            try validValidity(nbf: record.notBefore, exp: record.expires)
            record.updated = now
            key.versions[index] = record
            entry.live = key
            return record
        }
        return .json(200, bundle(name, updated))
    }

    func deleteKey(_ name: String) throws -> ServerResponse {
        let now = now
        let retention = configuration.retentionDays * 86_400
        let deleted: DeletedKeyRecord = try entry(name) { entry in
            guard let key = entry.live else { throw KeyVaultError.keyNotFound(name) }
            let deleted = DeletedKeyRecord(key: key, deletedDate: now, scheduledPurgeDate: now + retention)
            entry.live = nil
            entry.deleted = deleted
            return deleted
        }
        return .json(200, deletedBundle(deleted))
    }

    func getDeletedKey(_ name: String) throws -> ServerResponse {
        guard let deleted = try read(name).deleted else { throw KeyVaultError.deletedKeyNotFound(name) }
        return .json(200, deletedBundle(deleted))
    }

    func recoverDeletedKey(_ name: String) throws -> ServerResponse {
        let key: KeyRecord = try entry(name) { entry in
            guard let deleted = entry.deleted else { throw KeyVaultError.deletedKeyNotFound(name) }
            guard entry.live == nil else { throw KeyVaultError.conflictExists(name) }
            entry.deleted = nil
            entry.live = deleted.key
            return deleted.key
        }
        return .json(200, bundle(name, key.latest))
    }

    func purgeDeletedKey(_ name: String) throws -> ServerResponse {
        let protected = configuration.purgeProtection
        let vault = vaultName
        try entry(name) { entry in
            guard entry.deleted != nil else { throw KeyVaultError.deletedKeyNotFound(name) }
            if protected { throw KeyVaultError.purgeProtected(vault: vault) }
            entry.deleted = nil
        }
        return ServerResponse(status: 204)
    }

    // MARK: - Validation and key generation

    private func newVersion(
        kty: String, size: Int, keyOps: [String], enabled: Bool, nbf: Int?, exp: Int?, tags: [String: String]?
    ) throws -> KeyVersionRecord {
        let privateKey = try _RSA.Encryption.PrivateKey(keySize: .init(bitCount: size))
        let primitives = try privateKey.publicKey.getKeyPrimitives()
        let version = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let now = now
        return KeyVersionRecord(
            version: version, kty: kty, keySize: size, privateKey: SharedPrivateKey(privateKey), n: primitives.modulus, e: primitives.publicExponent,
            keyOps: keyOps, enabled: enabled, notBefore: nbf, expires: exp, created: now, updated: now, tags: tags)
    }

    private func validKeyOperations(_ operations: [String]?) throws -> [String]? {
        guard let operations else { return nil }
        if let unknown = operations.first(where: { !Self.allowedKeyOperations.contains($0) }) {
            throw KeyVaultError.badParameter(
                "Invalid key operation '\(unknown)'; accepted values: \(Self.allowedKeyOperations.sorted().joined(separator: ", ")).")
        }
        return operations
    }

    private func validTags(_ tags: [String: String]?) throws -> [String: String]? {
        guard let tags else { return nil }
        guard tags.count <= 15 else { throw KeyVaultError.badParameter("A key can have at most 15 tags; \(tags.count) were given.") }
        if let long = tags.first(where: { $0.key.count > 512 || $0.value.count > 512 }) {
            throw KeyVaultError.badParameter("Tag '\(long.key.prefix(40))' is longer than 512 characters.")
        }
        return tags
    }

    private func validValidity(nbf: Int?, exp: Int?) throws {
        if let nbf, let exp, nbf > exp {
            throw KeyVaultError.badParameter("The activation date (nbf \(nbf)) must not be after the expiration date (exp \(exp)).")
        }
    }
}
