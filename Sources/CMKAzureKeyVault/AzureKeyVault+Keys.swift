import CMKCore
import CMKEnvelope
import Foundation

extension AzureKeyVault {
    /// Versions per page (the service's maximum is 25).
    static let pageSize = 25
    /// A bound on pages, so a looping `nextLink` cannot hold a pass forever (25,000 versions).
    static let maximumPages = 1000

    public func snapshot(of key: KeyReference) async throws -> KeySnapshot {
        let latest = try await send(VaultCall(operation: "get-key", method: "GET", path: "/keys/\(Self.segment(key.name))/"))
        var latestVersion: KeyVersion?
        switch latest.status {
        case 200:
            let bundle = try decode(KeyBundle.self, latest, "get-key")
            latestVersion = try version(of: bundle.key.kid, bundle.attributes, key: key, operation: "get-key")
            remember(bundle.key, key: key)
        case 403 where mapped(latest, "get-key").code == .disabled:
            // The current version is disabled: Key Vault refuses `get` on it but still lists it.
            latestVersion = nil
        case 404 where ErrorMapping.isKeyNotFound(latest):
            return try await absent(key)
        default:
            throw mapped(latest, "get-key")
        }
        guard let versions = try await listVersions(key) else { return try await absent(key) }
        var all = versions
        if let latestVersion, !all.contains(where: { $0.id == latestVersion.id }) { all.append(latestVersion) }
        let latestID = latestVersion?.id
        all.sort { ($0.created, $0.id == latestID ? 1 : 0, $0.id) < ($1.created, $1.id == latestID ? 1 : 0, $1.id) }
        return .present(KeyState(key: key, versions: all))
    }

    /// Every version, following `nextLink`; nil when the key vanished (404) meanwhile.
    func listVersions(_ key: KeyReference) async throws(VaultError) -> [KeyVersion]? {
        var call = VaultCall(operation: "list-versions", method: "GET", path: "/keys/\(Self.segment(key.name))/versions",
                             query: [URLQueryItem(name: "maxresults", value: String(Self.pageSize))])
        var versions: [KeyVersion] = []
        for _ in 0..<Self.maximumPages {
            let response = try await send(call)
            if ErrorMapping.isKeyNotFound(response) { return nil }
            guard response.status == 200 else { throw mapped(response, "list-versions") }
            let page = try decode(KeyListResult.self, response, "list-versions")
            for item in page.value ?? [] {
                let version = try version(of: item.kid, item.attributes, key: key, operation: "list-versions")
                if !versions.contains(where: { $0.id == version.id }) { versions.append(version) }
            }
            guard let link = page.nextLink, !link.isEmpty else { return versions }
            call = try nextPage(link, operation: "list-versions")
        }
        throw VaultError(.corrupt, "the versions listing of key '\(key)' did not end after \(Self.maximumPages) pages")
    }

    /// After a 404 on the key: soft-deleted (pulled) or missing.
    func absent(_ key: KeyReference) async throws(VaultError) -> KeySnapshot {
        if let deleted = try await deletedKey(key) { return .deleted(deleted) }
        return .missing(key)
    }

    /// `GET /deletedkeys/{name}`: the deleted key, or nil when there is none (404 `KeyNotFound`).
    func deletedKey(_ key: KeyReference) async throws(VaultError) -> DeletedKey? {
        let response = try await send(VaultCall(operation: "get-deleted-key", method: "GET", path: "/deletedkeys/\(Self.segment(key.name))"))
        switch response.status {
        case 200:
            return try deleted(decode(DeletedKeyBundle.self, response, "get-deleted-key"), key: key, operation: "get-deleted-key")
        case 404 where ErrorMapping.isKeyNotFound(response):
            return nil
        case 403:
            let error = mapped(response, "get-deleted-key")
            throw VaultError(.forbidden, "key '\(key)' was not found and the identity may not read deleted keys, so a pull cannot be told from a missing key; grant it list on keys (access policy) or deletedKeys read (RBAC) — \(error.reason)")
        default:
            throw mapped(response, "get-deleted-key")
        }
    }

    public func publicKey(of key: KeyReference, version: String) async throws -> PublicKeyMaterial {
        try Self.checkVersion(version, key: key)
        if let cached = publicKeys.withLock({ $0[Self.cacheKey(key, version)] }) { return cached }
        let response = try await send(VaultCall(operation: "get-key-version", method: "GET",
                                                path: "/keys/\(Self.segment(key.name))/\(Self.segment(version))"))
        guard response.status == 200 else { throw try await keyError(response, "get-key-version", key: key, version: version) }
        let bundle = try decode(KeyBundle.self, response, "get-key-version")
        guard let material = remember(bundle.key, key: key) else {
            throw VaultError(.unsupported, "version \(version) of key '\(key)' is a \(bundle.key.kty ?? "?") key; only RSA and RSA-HSM keys wrap DEKs")
        }
        return material
    }

    /// Wraps in the vault (`wrapkey`). The syncer wraps locally with ``publicKey(of:version:)``;
    /// this exists for tools and checks.
    public func wrap(_ dek: SecretBytes, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> Data {
        try await keyOperation("wrap", path: "wrapkey", value: dek.withUnsafeBytes { Base64URL.encode($0) }, key: key,
                               version: version, algorithm: algorithm)
    }

    public func unwrap(_ wrappedKey: Data, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> SecretBytes {
        var plain = try await keyOperation("unwrap", path: "unwrapkey", value: Base64URL.encode(wrappedKey), key: key,
                                           version: version, algorithm: algorithm)
        defer { plain.resetBytes(in: 0..<plain.count) }
        return SecretBytes(copying: plain)
    }

    /// `POST /keys/{name}/{version}/{path}` with `RSA-OAEP-256`; the decoded `value` of the answer.
    private func keyOperation(_ operation: String, path: String, value: String, key: KeyReference, version: String,
                              algorithm: WrapAlgorithm) async throws(VaultError) -> Data {
        try Self.checkVersion(version, key: key)
        try Self.checkAlgorithm(algorithm)
        let body = try encode(KeyOperationParameters(alg: "RSA-OAEP-256", value: value))
        let response = try await send(VaultCall(operation: operation, method: "POST",
                                                path: "/keys/\(Self.segment(key.name))/\(Self.segment(version))/\(path)", body: body))
        guard response.status == 200 else { throw try await keyError(response, operation, key: key, version: version) }
        let result = try decode(KeyOperationResult.self, response, operation)
        guard let bytes = Base64URL.decode(result.value) else {
            throw VaultError(.corrupt, "the \(operation) answer from \(host) is not base64url")
        }
        return bytes
    }

    // MARK: Helpers

    /// The error for a failed key-scoped call; Key Vault's `KeyNotFound` is refined by the
    /// deleted-key lookup.
    func keyError(_ response: AzureHTTPResponse, _ operation: String, key: KeyReference, version: String? = nil) async throws(VaultError) -> VaultError {
        guard ErrorMapping.isKeyNotFound(response) else { return mapped(response, operation) }
        if let deleted = try await deletedKey(key) {
            return VaultError(.deleted, "key '\(key)' is deleted (since \(deleted.deletedDate.ISO8601Format())); \(operation) needs it recovered")
        }
        if let version { return VaultError(.notFound, "key '\(key)' or its version \(version) does not exist in \(host)") }
        return VaultError(.notFound, "key '\(key)' does not exist in \(host)")
    }

    func mapped(_ response: AzureHTTPResponse, _ operation: String) -> VaultError {
        ErrorMapping.error(response, operation: operation, vaultURL: configuration.vaultURL, wallNow: runtime.wallNow())
    }

    func encode(_ value: some Encodable) throws(VaultError) -> Data {
        do { return try JSONEncoder().encode(value) } catch { throw VaultError(.corrupt, "cannot encode a request body", underlying: error) }
    }

    static func checkAlgorithm(_ algorithm: WrapAlgorithm) throws(VaultError) {
        guard algorithm == .rsaOAEP256 else {
            throw VaultError(.unsupported, "algorithm \(algorithm.rawValue) is not supported by the azure provider (accepted: RSA-OAEP-256)")
        }
    }

    static func cacheKey(_ key: KeyReference, _ version: String) -> String { key.name + "/" + version }

    /// Caches and returns an RSA JWK's public key; nil for other key types.
    @discardableResult
    func remember(_ jwk: JSONWebKey, key: KeyReference) -> PublicKeyMaterial? {
        guard let kty = jwk.kty, kty == "RSA" || kty == "RSA-HSM", let n = jwk.n.flatMap(Base64URL.decode),
              let e = jwk.e.flatMap(Base64URL.decode), !n.isEmpty, !e.isEmpty,
              let version = KeyIdentifier.version(of: jwk.kid) else { return nil }
        let material = PublicKeyMaterial.rsa(modulus: n, exponent: e)
        publicKeys.withLock { $0[Self.cacheKey(key, version)] = material }
        return material
    }

    /// A ``KeyVersion`` from a `kid` and its attributes.
    func version(of kid: String, _ attributes: KeyAttributes, key: KeyReference, operation: String) throws(VaultError) -> KeyVersion {
        guard let id = KeyIdentifier.version(of: kid), !id.isEmpty else {
            throw VaultError(.corrupt, "malformed kid in the \(operation) answer from \(host)")
        }
        guard let created = attributes.created else {
            throw VaultError(.corrupt, "version \(id) of key '\(key)' has no created date in the \(operation) answer")
        }
        return KeyVersion(id: id, created: Date(timeIntervalSince1970: created), enabled: attributes.enabled ?? true,
                          notBefore: attributes.nbf.map { Date(timeIntervalSince1970: $0) },
                          expires: attributes.exp.map { Date(timeIntervalSince1970: $0) })
    }

    /// A ``DeletedKey`` from a deleted key bundle. Key Vault reports only the latest version of a
    /// deleted key, so `versions` stays empty rather than pretending to be complete.
    func deleted(_ bundle: DeletedKeyBundle, key: KeyReference, operation: String) throws(VaultError) -> DeletedKey {
        guard let deletedDate = bundle.deletedDate else {
            throw VaultError(.corrupt, "the \(operation) answer for key '\(key)' has no deletedDate")
        }
        return DeletedKey(key: key, deletedDate: Date(timeIntervalSince1970: deletedDate),
                          scheduledPurgeDate: bundle.scheduledPurgeDate.map { Date(timeIntervalSince1970: $0) })
    }
}
