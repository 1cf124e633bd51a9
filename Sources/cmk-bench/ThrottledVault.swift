import CMKCore
import Foundation
import Synchronization

/// A vault in front of another that behaves like a remote HSM-backed vault under load: every
/// call takes `latency` longer, and a token bucket admits at most `rate` operations per second
/// on average with bursts of at most `burst` (2,000 per 10 s: 200/s, bursts of 200). A call
/// beyond the budget is refused with `.throttled` and a whole-second `Retry-After`, as HTTP 429.
final class ThrottledVault: KeyVault {
    struct Counts: Codable, Sendable {
        var snapshots = 0
        var publicKeys = 0
        var wraps = 0
        var unwraps = 0
        /// Calls refused with `.throttled`.
        var throttled = 0
    }

    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    let base: any KeyVault
    let latency: Duration
    let rate: Double
    let burst: Double
    private let bucket: Mutex<Bucket>
    private let counts = Mutex(Counts())

    init(_ base: any KeyVault, latency: Duration, rate: Double, burst: Double) {
        self.base = base
        self.latency = latency
        self.rate = rate
        self.burst = burst
        bucket = Mutex(Bucket(tokens: burst, updated: Measure.wall()))
    }

    var capabilities: VaultCapabilities { base.capabilities }
    var calls: Counts { counts.withLock { $0 } }

    /// Takes one token, or returns how long until one is available.
    private func admit() -> Double? {
        let now = Measure.wall()
        return bucket.withLock { bucket in
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            guard bucket.tokens >= 1 else { return (1 - bucket.tokens) / rate }
            bucket.tokens -= 1
            return nil
        }
    }

    private func call<T>(_ count: WritableKeyPath<Counts, Int>, _ body: () async throws -> T) async throws -> T {
        try await Task.sleep(for: latency)
        if let wait = admit() {
            counts.withLock { $0.throttled += 1 }
            throw VaultError(.throttled, "too many requests: 2,000 operations per 10 s", retryAfter: .seconds(max(1, wait.rounded(.up))))
        }
        counts.withLock { $0[keyPath: count] += 1 }
        return try await body()
    }

    func snapshot(of key: KeyReference) async throws -> KeySnapshot {
        try await call(\.snapshots) { try await base.snapshot(of: key) }
    }

    func publicKey(of key: KeyReference, version: String) async throws -> PublicKeyMaterial {
        try await call(\.publicKeys) { try await base.publicKey(of: key, version: version) }
    }

    func wrap(_ dek: SecretBytes, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> Data {
        try await call(\.wraps) { try await base.wrap(dek, key: key, version: version, algorithm: algorithm) }
    }

    func unwrap(_ wrappedKey: Data, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> SecretBytes {
        try await call(\.unwraps) { try await base.unwrap(wrappedKey, key: key, version: version, algorithm: algorithm) }
    }
}
