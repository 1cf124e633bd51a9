import CMKCore
import CMKEnvelope
import Crypto
import CryptoExtras
import Foundation
import Synchronization

/// A key vault in memory with the semantics of SPEC §3, for unit tests and benchmarks.
/// It counts every call so tests can check the request budget.
public final class InMemoryKeyVault: KeyVaultAdministration {
    /// Calls made so far, by operation.
    public struct CallCounts: Hashable, Sendable {
        public var snapshot = 0
        public var publicKey = 0
        public var wrap = 0
        public var unwrap = 0
        public var total: Int { snapshot + publicKey + wrap + unwrap }

        public init(snapshot: Int = 0, publicKey: Int = 0, wrap: Int = 0, unwrap: Int = 0) {
            self.snapshot = snapshot
            self.publicKey = publicKey
            self.wrap = wrap
            self.unwrap = unwrap
        }
    }

    private struct StoredVersion: Sendable {
        var version: KeyVersion
        var size: RSAKeySize
        var publicKey: PublicKeyMaterial
        var privateKeyDER: SecretBytes
    }

    private struct StoredKey: Sendable {
        var versions: [StoredVersion]
        var deleted: (date: Date, purge: Date)?
    }

    private struct State: Sendable {
        var keys: [String: StoredKey] = [:]
        var calls = CallCounts()
        var nextVersion = 1
    }

    public let capabilities = VaultCapabilities(
        provider: "memory", exportsPublicKey: true, wrapsInVault: true, algorithms: [.rsaOAEP256], managesKeys: true)

    private let clock: any WallClock
    private let retention: Duration
    private let purgeProtection: Bool
    private let state = Mutex(State())

    /// - Parameters:
    ///   - clock: the source of "now" for dates and usability checks.
    ///   - retention: how long a deleted key stays recoverable (default 90 days).
    ///   - purgeProtection: refuse purges before the scheduled date (default true).
    public init(clock: any WallClock = SystemWallClock(), retention: Duration = .seconds(90 * 86_400), purgeProtection: Bool = true) {
        self.clock = clock
        self.retention = retention
        self.purgeProtection = purgeProtection
    }

    /// The calls made so far.
    public var calls: CallCounts { state.withLock { $0.calls } }

    // MARK: KeyVault

    public func snapshot(of key: KeyReference) async throws -> KeySnapshot {
        state.withLock { state in
            state.calls.snapshot += 1
            guard let stored = state.keys[key.name] else { return .missing(key) }
            let versions = stored.versions.map(\.version)
            if let deleted = stored.deleted {
                return .deleted(DeletedKey(key: key, deletedDate: deleted.date, scheduledPurgeDate: deleted.purge, versions: versions))
            }
            return .present(KeyState(key: key, versions: versions))
        }
    }

    public func publicKey(of key: KeyReference, version: String) async throws -> PublicKeyMaterial {
        try state.withLock { state in
            state.calls.publicKey += 1
            return try Self.usable(state, key, version).publicKey
        }
    }

    public func wrap(_ dek: SecretBytes, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> Data {
        let now = clock.now()
        let material = try state.withLock { state in
            state.calls.wrap += 1
            let stored = try Self.usable(state, key, version)
            try Self.checkAlgorithm(algorithm)
            if let refusal = stored.version.wrapRefusal(at: now) {
                if refusal == .disabled { throw VaultError(.disabled, "version \(version) of key '\(key)' is disabled") }
                throw VaultError(.invalidInput, "version \(version) of key '\(key)' may not wrap now: \(refusal)")
            }
            return stored.publicKey
        }
        return try DEKWrapping.wrap(dek, with: material)
    }

    public func unwrap(_ wrappedKey: Data, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> SecretBytes {
        let der = try state.withLock { state in
            state.calls.unwrap += 1
            let stored = try Self.usable(state, key, version)
            try Self.checkAlgorithm(algorithm)
            guard stored.version.canUnwrap else { throw VaultError(.disabled, "version \(version) of key '\(key)' is disabled") }
            return stored.privateKeyDER
        }
        return try DEKWrapping.unwrap(wrappedKey, with: der)
    }

    // MARK: KeyVaultAdministration

    public func createKey(_ key: KeyReference, size: RSAKeySize = .bits2048) async throws -> KeyVersion {
        let version = try Self.generate(size: size, created: clock.now(), id: "")
        return try state.withLock { state in
            guard state.keys[key.name] == nil else {
                throw VaultError(.conflict, "key '\(key)' already exists (or is soft-deleted)")
            }
            var stored = version
            stored.version.id = Self.nextID(&state)
            state.keys[key.name] = StoredKey(versions: [stored], deleted: nil)
            return stored.version
        }
    }

    public func rotateKey(_ key: KeyReference) async throws -> KeyVersion {
        let size = try state.withLock { state in try Self.present(state, key).versions.last!.size }
        let version = try Self.generate(size: size, created: clock.now(), id: "")
        return try state.withLock { state in
            _ = try Self.present(state, key)
            var stored = version
            stored.version.id = Self.nextID(&state)
            state.keys[key.name]!.versions.append(stored)
            return stored.version
        }
    }

    public func updateVersion(_ key: KeyReference, version: String, _ update: KeyVersionUpdate) async throws -> KeyVersion {
        try state.withLock { state in
            let stored = try Self.present(state, key)
            guard let index = stored.versions.firstIndex(where: { $0.version.id == version }) else {
                throw VaultError(.notFound, "key '\(key)' has no version \(version)")
            }
            var changed = stored.versions[index].version
            if let enabled = update.enabled { changed.enabled = enabled }
            changed.notBefore = update.notBefore.applied(to: changed.notBefore)
            changed.expires = update.expires.applied(to: changed.expires)
            state.keys[key.name]!.versions[index].version = changed
            return changed
        }
    }

    public func deleteKey(_ key: KeyReference) async throws -> DeletedKey {
        let now = clock.now()
        return try state.withLock { state in
            let stored = try Self.present(state, key)
            let purge = now.addingTimeInterval(retention.timeInterval)
            state.keys[key.name]!.deleted = (now, purge)
            return DeletedKey(key: key, deletedDate: now, scheduledPurgeDate: purge, versions: stored.versions.map(\.version))
        }
    }

    public func recoverKey(_ key: KeyReference) async throws -> KeyState {
        try state.withLock { state in
            guard let stored = state.keys[key.name] else { throw VaultError(.notFound, "key '\(key)' does not exist") }
            guard stored.deleted != nil else { throw VaultError(.conflict, "key '\(key)' is not deleted") }
            state.keys[key.name]!.deleted = nil
            return KeyState(key: key, versions: stored.versions.map(\.version))
        }
    }

    public func purgeKey(_ key: KeyReference) async throws {
        let now = clock.now()
        try state.withLock { state in
            guard let stored = state.keys[key.name] else { throw VaultError(.notFound, "key '\(key)' does not exist") }
            guard let deleted = stored.deleted else {
                throw VaultError(.conflict, "key '\(key)' is not deleted; delete it before purging")
            }
            if purgeProtection, now < deleted.purge {
                throw VaultError(.conflict, "purge protection is on: key '\(key)' can be purged from \(deleted.purge.ISO8601Format())")
            }
            state.keys[key.name] = nil
        }
    }

    // MARK: Helpers

    private static func nextID(_ state: inout State) -> String {
        defer { state.nextVersion += 1 }
        return String(format: "%032x", state.nextVersion)
    }

    private static func generate(size: RSAKeySize, created: Date, id: String) throws -> StoredVersion {
        let key = try _RSA.Encryption.PrivateKey(keySize: .init(bitCount: size.rawValue))
        let material = try DEKWrapping.material(of: key.publicKey)
        var der = key.derRepresentation
        defer { der.resetBytes(in: 0..<der.count) }
        return StoredVersion(version: KeyVersion(id: id, created: created), size: size, publicKey: material, privateKeyDER: SecretBytes(copying: der))
    }

    private static func present(_ state: State, _ key: KeyReference) throws -> StoredKey {
        guard let stored = state.keys[key.name] else { throw VaultError(.notFound, "key '\(key)' does not exist") }
        if stored.deleted != nil { throw VaultError(.deleted, "key '\(key)' is deleted") }
        return stored
    }

    private static func usable(_ state: State, _ key: KeyReference, _ version: String) throws -> StoredVersion {
        guard let stored = try present(state, key).versions.first(where: { $0.version.id == version }) else {
            throw VaultError(.notFound, "key '\(key)' has no version \(version)")
        }
        return stored
    }

    private static func checkAlgorithm(_ algorithm: WrapAlgorithm) throws {
        guard algorithm == .rsaOAEP256 else { throw VaultError(.unsupported, "algorithm \(algorithm.rawValue) is not supported") }
    }
}
