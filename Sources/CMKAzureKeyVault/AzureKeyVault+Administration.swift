import CMKCore
import Foundation

/// Key management through the same REST API. The daemon and `cmkctl` do not use it (keys of the
/// azure provider are managed in Azure); the conformance suite and tooling do.
extension AzureKeyVault {
    /// How long ``recoverKey(_:)`` waits for Key Vault to finish an asynchronous recovery.
    static let recoveryPolls = 30

    public func createKey(_ key: KeyReference, size: RSAKeySize) async throws -> KeyVersion {
        // Key Vault's create adds a version to an existing key; the contract wants a conflict.
        let existing = try await send(VaultCall(operation: "get-key", method: "GET", path: "/keys/\(Self.segment(key.name))/"))
        let exists = existing.status == 200 || (existing.status == 403 && mapped(existing, "get-key").code == .disabled)
        if exists { throw VaultError(.conflict, "key '\(key)' already exists in \(host)") }
        guard ErrorMapping.isKeyNotFound(existing) else { throw mapped(existing, "get-key") }
        let body = try encode(KeyCreateParameters(kty: configuration.keyType.rawValue, key_size: size.rawValue,
                                                  key_ops: ["wrapKey", "unwrapKey", "encrypt", "decrypt"], attributes: ["enabled": true]))
        let response = try await send(VaultCall(operation: "create-key", method: "POST", path: "/keys/\(Self.segment(key.name))/create",
                                                body: body, idempotent: false))
        return try bundleVersion(response, "create-key", key: key)
    }

    public func rotateKey(_ key: KeyReference) async throws -> KeyVersion {
        let response = try await send(VaultCall(operation: "rotate-key", method: "POST", path: "/keys/\(Self.segment(key.name))/rotate",
                                                idempotent: false))
        guard response.status == 200 else { throw try await keyError(response, "rotate-key", key: key) }
        return try bundleVersion(response, "rotate-key", key: key)
    }

    public func updateVersion(_ key: KeyReference, version: String, _ update: KeyVersionUpdate) async throws -> KeyVersion {
        try Self.checkVersion(version, key: key)
        var attributes: [String: Any] = [:]
        if let enabled = update.enabled { attributes["enabled"] = enabled }
        switch update.notBefore {
        case .unchanged: break
        case .set(let date): attributes["nbf"] = Int(date.timeIntervalSince1970)
        case .cleared: attributes["nbf"] = NSNull()
        }
        switch update.expires {
        case .unchanged: break
        case .set(let date): attributes["exp"] = Int(date.timeIntervalSince1970)
        case .cleared: attributes["exp"] = NSNull()
        }
        let body: Data
        do { body = try JSONSerialization.data(withJSONObject: ["attributes": attributes], options: [.sortedKeys]) } catch {
            throw VaultError(.corrupt, "cannot encode the update of version \(version)", underlying: error)
        }
        let response = try await send(VaultCall(operation: "update-key", method: "PATCH",
                                                path: "/keys/\(Self.segment(key.name))/\(Self.segment(version))", body: body))
        guard response.status == 200 else { throw try await keyError(response, "update-key", key: key, version: version) }
        return try bundleVersion(response, "update-key", key: key)
    }

    public func deleteKey(_ key: KeyReference) async throws -> DeletedKey {
        let response = try await send(VaultCall(operation: "delete-key", method: "DELETE", path: "/keys/\(Self.segment(key.name))"))
        guard response.status == 200 else { throw try await keyError(response, "delete-key", key: key) }
        return try deleted(decode(DeletedKeyBundle.self, response, "delete-key"), key: key, operation: "delete-key")
    }

    /// Recovers the key and waits (bounded) until Key Vault serves it again, as the SDKs' pollers do.
    public func recoverKey(_ key: KeyReference) async throws -> KeyState {
        let response = try await send(VaultCall(operation: "recover-key", method: "POST",
                                                path: "/deletedkeys/\(Self.segment(key.name))/recover", idempotent: false))
        guard response.status == 200 else { throw try await notDeletedError(response, "recover-key", key: key) }
        _ = try decode(KeyBundle.self, response, "recover-key")
        for poll in 0..<Self.recoveryPolls {
            if case .present(let state) = try await snapshot(of: key) { return state }
            try? await runtime.sleep(.milliseconds(min(2000, 250 << min(poll, 3))))
        }
        throw VaultError(.unavailable, "key '\(key)' was recovered but \(host) did not serve it within \(Self.recoveryPolls) polls")
    }

    public func purgeKey(_ key: KeyReference) async throws {
        let response = try await send(VaultCall(operation: "purge-key", method: "DELETE", path: "/deletedkeys/\(Self.segment(key.name))"))
        guard response.status == 204 || response.status == 200 else {
            throw try await notDeletedError(response, "purge-key", key: key)
        }
    }

    // MARK: Helpers

    /// A failed call on a deleted key: after Key Vault's `KeyNotFound`, a present key means "not
    /// deleted" (conflict).
    private func notDeletedError(_ response: AzureHTTPResponse, _ operation: String, key: KeyReference) async throws(VaultError) -> VaultError {
        guard ErrorMapping.isKeyNotFound(response) else { return mapped(response, operation) }
        let live = try await send(VaultCall(operation: "get-key", method: "GET", path: "/keys/\(Self.segment(key.name))/"))
        if live.status == 200 || (live.status == 403 && mapped(live, "get-key").code == .disabled) {
            return VaultError(.conflict, "key '\(key)' is not deleted; \(operation) applies to deleted keys only")
        }
        return VaultError(.notFound, "key '\(key)' is not a deleted key in \(host)")
    }

    private func bundleVersion(_ response: AzureHTTPResponse, _ operation: String, key: KeyReference) throws(VaultError) -> KeyVersion {
        guard response.status == 200 else { throw mapped(response, operation) }
        let bundle = try decode(KeyBundle.self, response, operation)
        remember(bundle.key, key: key)
        return try version(of: bundle.key.kid, bundle.attributes, key: key, operation: operation)
    }
}
