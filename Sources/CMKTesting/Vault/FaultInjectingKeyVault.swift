import CMKCore
import Foundation
import Synchronization

/// Wraps a vault and makes chosen calls fail the way real vaults fail: outages, throttling with
/// and without `Retry-After`, rejected credentials. Faults are consumed in order, one per call.
public final class FaultInjectingKeyVault: KeyVault {
    /// Which calls a queued fault applies to.
    public enum Operation: Hashable, Sendable {
        case snapshot, publicKey, wrap, unwrap
    }

    public let base: any KeyVault
    private let faults = Mutex<[Operation: [VaultError]]>([:])
    private let persistent = Mutex<[Operation: VaultError]>([:])

    public init(_ base: any KeyVault) { self.base = base }

    /// Queues faults for the next calls of `operation`.
    public func fail(_ operation: Operation, with errors: [VaultError]) {
        faults.withLock { $0[operation, default: []] += errors }
    }

    /// Makes every call of `operation` fail until ``heal(_:)``.
    public func failAlways(_ operation: Operation, with error: VaultError) {
        persistent.withLock { $0[operation] = error }
    }

    public func heal(_ operation: Operation) {
        persistent.withLock { $0[operation] = nil }
        faults.withLock { $0[operation] = nil }
    }

    private func inject(_ operation: Operation) throws {
        if let error = persistent.withLock({ $0[operation] }) { throw error }
        let next = faults.withLock { queue -> VaultError? in
            guard var list = queue[operation], !list.isEmpty else { return nil }
            let first = list.removeFirst()
            queue[operation] = list
            return first
        }
        if let next { throw next }
    }

    public var capabilities: VaultCapabilities { base.capabilities }

    public func snapshot(of key: KeyReference) async throws -> KeySnapshot {
        try inject(.snapshot)
        return try await base.snapshot(of: key)
    }

    public func publicKey(of key: KeyReference, version: String) async throws -> PublicKeyMaterial {
        try inject(.publicKey)
        return try await base.publicKey(of: key, version: version)
    }

    public func wrap(_ dek: SecretBytes, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> Data {
        try inject(.wrap)
        return try await base.wrap(dek, key: key, version: version, algorithm: algorithm)
    }

    public func unwrap(_ wrappedKey: Data, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> SecretBytes {
        try inject(.unwrap)
        return try await base.unwrap(wrappedKey, key: key, version: version, algorithm: algorithm)
    }
}
