import Foundation

/// The contract every vault provider fulfils (SPEC §3). Providers throw only ``VaultError``.
///
/// Unwrapping always happens inside the vault; wrapping happens locally with
/// ``publicKey(of:version:)`` where ``VaultCapabilities/exportsPublicKey`` is true, and with
/// ``wrap(_:key:version:algorithm:)`` otherwise.
public protocol KeyVault: Sendable {
    /// What the provider supports.
    var capabilities: VaultCapabilities { get }

    /// The key's state: present with versions, soft-deleted, or missing. Outages, throttling and
    /// rejected credentials are thrown, never reported as a missing key.
    func snapshot(of key: KeyReference) async throws -> KeySnapshot

    /// The public key of one version, for local wrapping. Works for disabled and expired versions too;
    /// the caller decides whether the version may wrap.
    func publicKey(of key: KeyReference, version: String) async throws -> PublicKeyMaterial

    /// Wraps a DEK inside the vault. Refused for versions that may not wrap now.
    func wrap(_ dek: SecretBytes, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> Data

    /// Unwraps a DEK inside the vault. Refused for disabled versions and deleted keys; allowed for
    /// expired and not-yet-valid versions.
    func unwrap(_ wrappedKey: Data, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> SecretBytes
}

/// A change to one attribute of a key version.
public enum AttributeChange<Value: Hashable & Sendable>: Hashable, Sendable {
    case unchanged
    case set(Value)
    case cleared

    /// Applies the change to a current value.
    public func applied(to value: Value?) -> Value? {
        switch self {
        case .unchanged: return value
        case .set(let new): return new
        case .cleared: return nil
        }
    }
}

/// The attributes an operator can change on a version.
public struct KeyVersionUpdate: Hashable, Sendable {
    public var enabled: Bool?
    public var notBefore: AttributeChange<Date>
    public var expires: AttributeChange<Date>

    public init(enabled: Bool? = nil, notBefore: AttributeChange<Date> = .unchanged, expires: AttributeChange<Date> = .unchanged) {
        self.enabled = enabled
        self.notBefore = notBefore
        self.expires = expires
    }
}

/// Key management for providers that allow it (the local vault; test vaults).
public protocol KeyVaultAdministration: KeyVault {
    /// Creates a key with its first version. Fails with `.conflict` if it exists or is soft-deleted.
    func createKey(_ key: KeyReference, size: RSAKeySize) async throws -> KeyVersion
    /// Adds a new version, which becomes current.
    func rotateKey(_ key: KeyReference) async throws -> KeyVersion
    /// Changes a version's attributes.
    func updateVersion(_ key: KeyReference, version: String, _ update: KeyVersionUpdate) async throws -> KeyVersion
    /// Soft-deletes the key and all its versions.
    func deleteKey(_ key: KeyReference) async throws -> DeletedKey
    /// Recovers a soft-deleted key with every version as it was.
    func recoverKey(_ key: KeyReference) async throws -> KeyState
    /// Purges a soft-deleted key. Refused with `.conflict` while purge protection holds.
    func purgeKey(_ key: KeyReference) async throws
}

extension VaultError {
    /// Wraps any error a provider let escape as a ``VaultError``, keeping vault errors as they are.
    public static func from(_ error: any Error, _ context: String) -> VaultError {
        if let error = error as? VaultError { return error }
        return VaultError(.corrupt, context, underlying: error)
    }
}
