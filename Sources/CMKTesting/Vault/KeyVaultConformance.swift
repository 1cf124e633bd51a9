import CMKCore
import CMKEnvelope
import Foundation

/// The contract every ``KeyVault`` provider must honour (SPEC §3), as one runnable suite.
///
/// Each check gets a fresh vault from the factory, drives it through ``KeyVaultAdministration``
/// and a ``ManualClock``, and throws ``ConformanceFailure`` on the first broken expectation.
/// Providers run it from their test targets:
///
/// ```swift
/// let ran = try await KeyVaultConformance { clock in try makeVault(clock) }.run()
/// ```
public struct KeyVaultConformance: Sendable {
    public typealias Factory = @Sendable (ManualClock) async throws -> any KeyVaultAdministration

    private let makeVault: Factory
    private let keySize: RSAKeySize

    public init(keySize: RSAKeySize = .bits2048, makeVault: @escaping Factory) {
        self.makeVault = makeVault
        self.keySize = keySize
    }

    /// Runs every check; returns their names.
    public func run() async throws -> [String] {
        var ran: [String] = []
        for (name, check) in checks {
            let clock = ManualClock()
            let vault = try await makeVault(clock)
            let context = Context(name: name, vault: vault, clock: clock, key: try KeyReference("conformance-\(ran.count)"), size: keySize)
            do {
                try await check(context)
            } catch let failure as ConformanceFailure {
                throw failure
            } catch {
                throw ConformanceFailure(check: name, message: "unexpected error: \(error)")
            }
            ran.append(name)
        }
        return ran
    }

    struct Context: Sendable {
        let name: String
        let vault: any KeyVaultAdministration
        let clock: ManualClock
        let key: KeyReference
        let size: RSAKeySize
        /// The algorithm the provider wraps new DEKs with (RSA-OAEP-256, or A256KWP on an AES-only HSM).
        var algorithm: WrapAlgorithm { vault.capabilities.wrapAlgorithm }

        func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
            if !condition { throw ConformanceFailure(check: name, message: message()) }
        }

        func expectError(_ code: VaultError.Code, _ what: String, _ body: () async throws -> Void) async throws {
            do {
                try await body()
            } catch let error as VaultError {
                try expect(error.code == code, "\(what): expected \(code), got \(error.code) (\(error.reason))")
                return
            } catch {
                throw ConformanceFailure(check: name, message: "\(what): expected VaultError \(code), got \(error)")
            }
            throw ConformanceFailure(check: name, message: "\(what): expected \(code), but it succeeded")
        }

        func state() async throws -> KeyState {
            guard case .present(let state) = try await vault.snapshot(of: key) else {
                throw ConformanceFailure(check: name, message: "key '\(key)' should be present")
            }
            return state
        }

        /// Wraps a fresh DEK under `version` (locally when the provider exports public keys).
        func wrapFresh(_ version: String) async throws -> (dek: SecretBytes, wrapped: Data) {
            let dek = DEKWrapping.generateDEK()
            if vault.capabilities.exportsPublicKey {
                let material = try await vault.publicKey(of: key, version: version)
                return (dek, try DEKWrapping.wrap(dek, with: material))
            }
            return (dek, try await vault.wrap(dek, key: key, version: version, algorithm: algorithm))
        }

        func expectRoundTrip(_ version: String, _ what: String) async throws {
            let (dek, wrapped) = try await wrapFresh(version)
            let unwrapped = try await vault.unwrap(wrapped, key: key, version: version, algorithm: algorithm)
            try expect(unwrapped == dek, "\(what): unwrap did not return the wrapped DEK")
        }
    }

    private var checks: [(String, @Sendable (Context) async throws -> Void)] {
        [
            ("a key that was never created is missing", { c in
                let snapshot = try await c.vault.snapshot(of: c.key)
                try c.expect(snapshot == .missing(c.key), "expected .missing, got \(snapshot)")
                try await c.expectError(.notFound, "unwrap on a missing key") {
                    _ = try await c.vault.unwrap(Data(repeating: 1, count: 256), key: c.key, version: "0", algorithm: c.algorithm)
                }
            }),
            ("create makes one enabled version created now", { c in
                let version = try await c.vault.createKey(c.key, size: c.size)
                let state = try await c.state()
                try c.expect(state.versions == [version], "snapshot versions \(state.versions) != created \(version)")
                try c.expect(version.enabled, "new version must be enabled")
                try c.expect(abs(version.created.timeIntervalSince(c.clock.now())) < 2, "created \(version.created) is not now \(c.clock.now())")
                try c.expect(state.newestWrappable(at: c.clock.now()) == version, "the new version must be wrappable")
                try await c.expectError(.conflict, "creating an existing key") { _ = try await c.vault.createKey(c.key, size: c.size) }
            }),
            ("public key has the requested size", { c in
                let version = try await c.vault.createKey(c.key, size: c.size)
                if c.vault.capabilities.exportsPublicKey {
                    let material = try await c.vault.publicKey(of: c.key, version: version.id)
                    try c.expect(material.bitCount == c.size.rawValue, "public key has \(material.bitCount) bits, expected \(c.size.rawValue)")
                }
            }),
            ("rotation adds a newer current version and keeps the old one usable", { c in
                let first = try await c.vault.createKey(c.key, size: c.size)
                c.clock.advance(by: .seconds(60))
                let second = try await c.vault.rotateKey(c.key)
                let state = try await c.state()
                try c.expect(first.id != second.id, "rotation must create a new version id")
                try c.expect(state.versions.map(\.id) == [first.id, second.id], "versions \(state.versions.map(\.id)) not oldest-first")
                try c.expect(state.current?.id == second.id, "current should be the rotated version")
                try await c.expectRoundTrip(first.id, "old version after rotation")
                try await c.expectRoundTrip(second.id, "new version")
            }),
            ("wrap locally or in the vault and unwrap in the vault", { c in
                let version = try await c.vault.createKey(c.key, size: c.size)
                try await c.expectRoundTrip(version.id, "round trip")
                if c.vault.capabilities.wrapsInVault {
                    let dek = DEKWrapping.generateDEK()
                    let wrapped = try await c.vault.wrap(dek, key: c.key, version: version.id, algorithm: c.algorithm)
                    let back = try await c.vault.unwrap(wrapped, key: c.key, version: version.id, algorithm: c.algorithm)
                    try c.expect(back == dek, "in-vault wrap did not round-trip")
                }
            }),
            ("unwrap refuses the wrong version, a tampered wrapping and an unknown version", { c in
                let first = try await c.vault.createKey(c.key, size: c.size)
                let second = try await c.vault.rotateKey(c.key)
                let (_, wrapped) = try await c.wrapFresh(first.id)
                try await c.expectError(.invalidInput, "unwrap under the wrong version") {
                    _ = try await c.vault.unwrap(wrapped, key: c.key, version: second.id, algorithm: c.algorithm)
                }
                var tampered = wrapped
                tampered[tampered.count / 2] ^= 0x01
                try await c.expectError(.invalidInput, "unwrap of a tampered wrapping") {
                    _ = try await c.vault.unwrap(tampered, key: c.key, version: first.id, algorithm: c.algorithm)
                }
                try await c.expectError(.notFound, "unwrap with an unknown version") {
                    _ = try await c.vault.unwrap(wrapped, key: c.key, version: "ffffffffffffffffffffffffffffffff", algorithm: c.algorithm)
                }
            }),
            ("a disabled version neither wraps nor unwraps; re-enabling restores it", { c in
                let version = try await c.vault.createKey(c.key, size: c.size)
                let (dek, wrapped) = try await c.wrapFresh(version.id)
                let disabled = try await c.vault.updateVersion(c.key, version: version.id, KeyVersionUpdate(enabled: false))
                try c.expect(!disabled.enabled, "update should report the version disabled")
                try c.expect(try await c.state().version(version.id)?.enabled == false, "snapshot should show the version disabled")
                try await c.expectError(.disabled, "unwrap with a disabled version") {
                    _ = try await c.vault.unwrap(wrapped, key: c.key, version: version.id, algorithm: c.algorithm)
                }
                if c.vault.capabilities.wrapsInVault {
                    try await c.expectError(.disabled, "wrap with a disabled version") {
                        _ = try await c.vault.wrap(dek, key: c.key, version: version.id, algorithm: c.algorithm)
                    }
                }
                _ = try await c.vault.updateVersion(c.key, version: version.id, KeyVersionUpdate(enabled: true))
                let back = try await c.vault.unwrap(wrapped, key: c.key, version: version.id, algorithm: c.algorithm)
                try c.expect(back == dek, "unwrap after re-enabling must work")
            }),
            ("an expired version still unwraps but may not wrap", { c in
                let version = try await c.vault.createKey(c.key, size: c.size)
                let (dek, wrapped) = try await c.wrapFresh(version.id)
                let expiry = c.clock.now().addingTimeInterval(3600)
                let updated = try await c.vault.updateVersion(c.key, version: version.id, KeyVersionUpdate(expires: .set(expiry)))
                try c.expect(updated.expires.map { abs($0.timeIntervalSince(expiry)) < 1 } == true, "expiry not stored: \(String(describing: updated.expires))")
                c.clock.advance(by: .seconds(7200))
                let state = try await c.state()
                try c.expect(state.newestWrappable(at: c.clock.now()) == nil, "an expired version must not be wrappable")
                let back = try await c.vault.unwrap(wrapped, key: c.key, version: version.id, algorithm: c.algorithm)
                try c.expect(back == dek, "expired versions must still unwrap (expiry is not revocation)")
                if c.vault.capabilities.wrapsInVault {
                    do {
                        _ = try await c.vault.wrap(dek, key: c.key, version: version.id, algorithm: c.algorithm)
                        throw ConformanceFailure(check: c.name, message: "wrap with an expired version must be refused")
                    } catch is VaultError {}
                }
            }),
            ("a not-yet-valid version still unwraps but may not wrap", { c in
                let version = try await c.vault.createKey(c.key, size: c.size)
                let (dek, wrapped) = try await c.wrapFresh(version.id)
                _ = try await c.vault.updateVersion(c.key, version: version.id,
                                                    KeyVersionUpdate(notBefore: .set(c.clock.now().addingTimeInterval(86_400))))
                let state = try await c.state()
                try c.expect(state.version(version.id)?.wrapRefusal(at: c.clock.now()) != nil, "version should not be wrappable yet")
                let back = try await c.vault.unwrap(wrapped, key: c.key, version: version.id, algorithm: c.algorithm)
                try c.expect(back == dek, "not-yet-valid versions must still unwrap")
                _ = try await c.vault.updateVersion(c.key, version: version.id, KeyVersionUpdate(notBefore: .cleared))
                try c.expect(try await c.state().version(version.id)?.notBefore == nil, "clearing not-before must stick")
            }),
            ("delete soft-deletes with dates and stops unwrap; recover restores every version", { c in
                let first = try await c.vault.createKey(c.key, size: c.size)
                let second = try await c.vault.rotateKey(c.key)
                _ = try await c.vault.updateVersion(c.key, version: first.id, KeyVersionUpdate(expires: .set(c.clock.now().addingTimeInterval(999))))
                let before = try await c.state()
                let (dek, wrapped) = try await c.wrapFresh(second.id)
                let deleted = try await c.vault.deleteKey(c.key)
                try c.expect(abs(deleted.deletedDate.timeIntervalSince(c.clock.now())) < 2, "deletedDate should be now")
                guard let purge = deleted.scheduledPurgeDate else {
                    throw ConformanceFailure(check: c.name, message: "a deleted key must have a scheduled purge date")
                }
                let days = purge.timeIntervalSince(deleted.deletedDate) / 86_400
                try c.expect((7...90).contains(Int(days.rounded())), "retention \(days) days is outside 7-90")
                guard case .deleted(let seen) = try await c.vault.snapshot(of: c.key) else {
                    throw ConformanceFailure(check: c.name, message: "snapshot of a deleted key should be .deleted")
                }
                try c.expect(seen.scheduledPurgeDate == purge, "snapshot purge date differs from delete's")
                try await c.expectError(.deleted, "unwrap on a deleted key") {
                    _ = try await c.vault.unwrap(wrapped, key: c.key, version: second.id, algorithm: c.algorithm)
                }
                try await c.expectError(.deleted, "rotate on a deleted key") { _ = try await c.vault.rotateKey(c.key) }
                try await c.expectError(.conflict, "create over a deleted key") { _ = try await c.vault.createKey(c.key, size: c.size) }
                let recovered = try await c.vault.recoverKey(c.key)
                try c.expect(recovered.versions == before.versions, "recover must restore every version as it was")
                let back = try await c.vault.unwrap(wrapped, key: c.key, version: second.id, algorithm: c.algorithm)
                try c.expect(back == dek, "unwrap after recovery must work")
            }),
            ("purge is refused under purge protection until the scheduled date", { c in
                _ = try await c.vault.createKey(c.key, size: c.size)
                try await c.expectError(.conflict, "purge of a key that is not deleted") { try await c.vault.purgeKey(c.key) }
                let deleted = try await c.vault.deleteKey(c.key)
                try await c.expectError(.conflict, "purge before the scheduled date") { try await c.vault.purgeKey(c.key) }
                try c.expect(try await c.vault.snapshot(of: c.key) != .missing(c.key), "a refused purge must keep the key")
                c.clock.set(deleted.scheduledPurgeDate!.addingTimeInterval(1))
                // After the scheduled date the purge is allowed; a vault that purges on schedule by
                // itself (Azure Key Vault) may already have done it and answers not-found.
                do {
                    try await c.vault.purgeKey(c.key)
                } catch let error as VaultError where error.code == .notFound {}
                let after = try await c.vault.snapshot(of: c.key)
                try c.expect(after == .missing(c.key), "a purged key must be missing, got \(after)")
                try await c.expectError(.notFound, "recover after purge") { _ = try await c.vault.recoverKey(c.key) }
            }),
            ("errors never contain key material", { c in
                let version = try await c.vault.createKey(c.key, size: c.size)
                let (dek, wrapped) = try await c.wrapFresh(version.id)
                _ = try await c.vault.updateVersion(c.key, version: version.id, KeyVersionUpdate(enabled: false))
                let hex = dek.withUnsafeBytes { Hex.encode($0) }
                do {
                    _ = try await c.vault.unwrap(wrapped, key: c.key, version: version.id, algorithm: c.algorithm)
                    throw ConformanceFailure(check: c.name, message: "unwrap with a disabled version must fail")
                } catch let error as VaultError {
                    let text = "\(error) \(String(reflecting: error))"
                    try c.expect(!text.contains(hex), "error text contains the DEK")
                }
                try c.expect("\(dek)" == "<redacted>", "SecretBytes must print <redacted>")
            }),
        ]
    }
}
