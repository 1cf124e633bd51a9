import CMKCore
import CMKEnvelope
import Foundation
import Synchronization

/// Turns wrapped DEKs into usable keys and back: unwraps through the DEK cache and the vault,
/// wraps locally with the version's public key where the provider exports it (in the vault
/// otherwise), and proves once per version that the public key matches the vault's private key.
/// Every vault call waits out throttling through one shared ``VaultThrottle``.
public final class DEKResolver: Sendable {
    public let vault: any KeyVault
    public let cache: DEKCache
    public let throttle: VaultThrottle

    private struct State: Sendable {
        var publicKeys: [String: PublicKeyMaterial] = [:]
        var verified: Set<String> = []
        /// Verifications and public-key reads under way: callers that ask for the same version
        /// meanwhile wait for that one vault call instead of making their own (a pass rebinds up to
        /// `sync.concurrency` accounts at once, all to the same new version).
        var verifying: [String: Task<Void, any Error>] = [:]
        var fetching: [String: Task<PublicKeyMaterial, any Error>] = [:]
    }
    private let state = Mutex(State())

    public init(vault: any KeyVault, cache: DEKCache, throttle: VaultThrottle = VaultThrottle()) {
        self.vault = vault
        self.cache = cache
        self.throttle = throttle
    }

    /// The plaintext of a DEK of `account`, from the cache or unwrapped in the vault. A DEK
    /// unwrapped in the vault must match its check value (``WrappedDEK/kcv``) when it has one.
    public func unwrap(_ wrapped: WrappedDEK, account: String, key: KeyReference) async throws -> SecretBytes {
        if let cached = cache.get(account: account, dek: wrapped.id) { return cached }
        let dek = try await throttle.perform {
            try await vault.unwrap(wrapped.wrappedKey, key: key, version: wrapped.keyVersion, algorithm: wrapped.algorithm)
        }
        guard dek.count == DEKWrapping.dekByteCount else {
            throw VaultError(.corrupt, "DEK \(wrapped.id) of account '\(account)' unwrapped to \(dek.count) bytes, not 32")
        }
        try Self.check(dek, of: wrapped, account: account)
        cache.insert(dek, account: account, dek: wrapped.id)
        return dek
    }

    /// Refuses an unwrapped DEK that does not match the check value stored beside its wrapping
    /// (zeroing it first): the wrapping belongs to another DEK or another account.
    static func check(_ dek: SecretBytes, of wrapped: WrappedDEK, account: String) throws {
        guard let kcv = wrapped.kcv, !DEKCheckValue.matches(kcv, dek: dek, account: account, id: wrapped.id) else { return }
        dek.zeroize()
        throw StorageError(.corrupt, "keyring of account '\(account)': the wrapping of DEK \(wrapped.id) does not match its check value (kcv): it was moved from another DEK or account, or edited; restore the keyring from a backup")
    }

    /// Wraps `dek` of `account` under `version` (which the caller has checked may wrap now), with
    /// the check value that binds it to `id` and `account`.
    public func wrap(_ dek: SecretBytes, id: DEKID, account: String, key: KeyReference, version: String, created: Date) async throws -> WrappedDEK {
        let capabilities = vault.capabilities
        let algorithm = capabilities.wrapAlgorithm
        let wrappedKey: Data
        if capabilities.exportsPublicKey {
            let material = try await publicKey(key: key, version: version)
            wrappedKey = try DEKWrapping.wrap(dek, with: material)
            guard wrappedKey.count == material.bitCount / 8 else {
                throw VaultError(.corrupt, "local wrap under version \(version) produced \(wrappedKey.count) bytes")
            }
        } else {
            wrappedKey = try await throttle.perform { try await vault.wrap(dek, key: key, version: version, algorithm: algorithm) }
        }
        return WrappedDEK(id: id, keyVersion: version, algorithm: algorithm, wrappedKey: wrappedKey, created: created,
                          kcv: DEKCheckValue.compute(dek: dek, account: account, id: id))
    }

    /// Proves, once per version, that what we wrap with `version` the vault can unwrap: wraps a
    /// random probe and unwraps it in the vault, checking it as every unwrap is checked. Costs one
    /// vault unwrap per version per process: concurrent callers share the one under way, and a
    /// failed proof is tried again by the next caller.
    public func verify(key: KeyReference, version: String) async throws {
        let cacheKey = "\(key.name)/\(version)"
        let shared: Task<Void, any Error>? = state.withLock { state in
            if state.verified.contains(cacheKey) { return nil }
            if let running = state.verifying[cacheKey] { return running }
            let task = Task {
                do {
                    try await self.prove(key: key, version: version)
                    self.state.withLock { state in
                        state.verified.insert(cacheKey)
                        state.verifying[cacheKey] = nil
                    }
                } catch {
                    self.state.withLock { $0.verifying[cacheKey] = nil }
                    throw error
                }
            }
            state.verifying[cacheKey] = task
            return task
        }
        try await shared?.value
    }

    private func prove(key: KeyReference, version: String) async throws {
        let probe = DEKWrapping.generateDEK()
        let account = "(probe of \(key.name)/\(version))"
        let wrapped = try await wrap(probe, id: .random(), account: account, key: key, version: version, created: Date())
        let back = try await throttle.perform {
            try await vault.unwrap(wrapped.wrappedKey, key: key, version: version, algorithm: wrapped.algorithm)
        }
        guard back == probe else {
            throw VaultError(.corrupt, "version \(version) of key '\(key)': the vault did not unwrap what its public key wrapped")
        }
        try Self.check(back, of: wrapped, account: account)
    }

    /// Forgets verified versions and public keys (after a key was deleted and recovered, say).
    public func reset() {
        state.withLock { $0 = State() }
    }

    private func publicKey(key: KeyReference, version: String) async throws -> PublicKeyMaterial {
        let cacheKey = "\(key.name)/\(version)"
        let (known, shared): (PublicKeyMaterial?, Task<PublicKeyMaterial, any Error>?) = state.withLock { state in
            if let known = state.publicKeys[cacheKey] { return (known, nil) }
            if let running = state.fetching[cacheKey] { return (nil, running) }
            let task = Task {
                do {
                    let material = try await self.throttle.perform { try await self.vault.publicKey(of: key, version: version) }
                    self.state.withLock { state in
                        state.publicKeys[cacheKey] = material
                        state.fetching[cacheKey] = nil
                    }
                    return material
                } catch {
                    self.state.withLock { $0.fetching[cacheKey] = nil }
                    throw error
                }
            }
            state.fetching[cacheKey] = task
            return (nil, task)
        }
        if let known { return known }
        return try await shared!.value
    }
}
