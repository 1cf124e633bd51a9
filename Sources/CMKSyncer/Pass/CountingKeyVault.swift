import CMKCore
import Foundation
import Synchronization

/// Wraps a vault and counts the calls made through it, so each pass can report its request budget;
/// tells the process's ``VaultObserver`` (the daemon's metrics, when on) each call's outcome and time.
public final class CountingKeyVault: KeyVault {
    public let base: any KeyVault
    private let counter = Atomic<Int>(0)

    public init(_ base: any KeyVault) { self.base = base }

    /// Calls made so far.
    public var calls: Int { counter.load(ordering: .relaxed) }

    public var capabilities: VaultCapabilities { base.capabilities }

    /// Runs one call, timed for the observer when one is installed.
    private func observed<T>(_ operation: String, _ call: () async throws -> T) async throws -> T {
        guard let observer = VaultObservation.observer else { return try await call() }
        let start = ContinuousClock.now
        do {
            let value = try await call()
            observer.vaultCall(operation, outcome: .ok, seconds: (ContinuousClock.now - start).timeInterval)
            return value
        } catch {
            observer.vaultCall(operation, outcome: VaultCallOutcome(error), seconds: (ContinuousClock.now - start).timeInterval)
            throw error
        }
    }

    public func snapshot(of key: KeyReference) async throws -> KeySnapshot {
        counter.add(1, ordering: .relaxed)
        return try await observed("snapshot") { try await base.snapshot(of: key) }
    }

    public func publicKey(of key: KeyReference, version: String) async throws -> PublicKeyMaterial {
        counter.add(1, ordering: .relaxed)
        return try await observed("public-key") { try await base.publicKey(of: key, version: version) }
    }

    public func wrap(_ dek: SecretBytes, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> Data {
        counter.add(1, ordering: .relaxed)
        return try await observed("wrap") { try await base.wrap(dek, key: key, version: version, algorithm: algorithm) }
    }

    public func unwrap(_ wrappedKey: Data, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> SecretBytes {
        counter.add(1, ordering: .relaxed)
        return try await observed("unwrap") { try await base.unwrap(wrappedKey, key: key, version: version, algorithm: algorithm) }
    }
}
