import CMKAccounts
import CMKCore
import CMKEnvelope
import CMKLocalVault
import Foundation

/// Suites 1 and 2: envelope throughput against `openssl speed -evp aes-256-gcm`, and RSA-OAEP-256
/// through the local vault against `openssl speed rsa2048`.
enum CryptoBench {
    static let objectSizes = [4 << 10, 64 << 10, 1 << 20, 64 << 20]
    static let streamChunk = 1 << 20

    static func envelope(_ plan: Plan, into results: inout Results) async throws {
        let dek = DEKWrapping.generateDEK()
        let id = DEKID.random()
        for size in objectSizes {
            let plaintext = [UInt8](SecretBytes.random(count: size).withUnsafeBytes { Array($0) })
            let sealed = try EnvelopeSealer.seal(plaintext, dek: dek, dekID: id, account: "bench", object: "object")
            // Streamed as the data plane does, 1 MiB at a time into a reused buffer (as if written to
            // storage), so that the figure is the envelope's and not the allocator's.
            let chunk = min(size, streamChunk)
            var out = [UInt8]()
            let seal = try await Rate.measure(units: Double(size), seconds: plan.cryptoSeconds) {
                var sealer = try EnvelopeSealer(dek: dek, dekID: id, account: "bench", object: "object")
                for start in stride(from: 0, to: size, by: chunk) {
                    out.removeAll(keepingCapacity: true)
                    sealer.update(plaintext[start..<min(size, start + chunk)], into: &out)
                }
                sealer.finish(into: &out)
            }
            guard let (header, headerLength) = try EnvelopeHeader.parse(sealed) else { throw EnvelopeError(.truncated, "sealed object has no header") }
            let open = try await Rate.measure(units: Double(size), seconds: plan.cryptoSeconds) {
                var opener = try EnvelopeOpener(header: header, account: "bench", object: "object", dek: dek, dekID: id)
                for start in stride(from: headerLength, to: sealed.count, by: streamChunk) {
                    out.removeAll(keepingCapacity: true)
                    try opener.feed(sealed[start..<min(sealed.count, start + streamChunk)], into: &out)
                }
                try opener.finish()
            }
            guard try EnvelopeOpener.open(sealed, account: "bench", objectID: "object", dek: { _ in dek }) == plaintext else {
                throw EnvelopeError(.authenticationFailed, "benchmark object did not round-trip")
            }
            let anchorSeconds = plan.opensslSeconds
            let encrypt = try OpenSSLAnchor.aesGCM(bytes: size, seconds: anchorSeconds, decrypt: false)
            let decrypt = try OpenSSLAnchor.aesGCM(bytes: size, seconds: anchorSeconds, decrypt: true)
            let label = Results.size(size)
            results.add(Figure(suite: "envelope", name: "seal \(label)", value: seal.perCPUSecond, unit: "B/s",
                               anchor: encrypt, anchorName: "openssl aes-256-gcm encrypt -bytes \(size)",
                               target: size == 1 << 20 ? 0.8 : nil, detail: ["wall B/s": seal.perWallSecond]))
            results.add(Figure(suite: "envelope", name: "open \(label)", value: open.perCPUSecond, unit: "B/s",
                               anchor: decrypt, anchorName: "openssl aes-256-gcm decrypt -bytes \(size)",
                               target: size == 1 << 20 ? 0.8 : nil, detail: ["wall B/s": open.perWallSecond]))
        }
    }

    /// A local vault in `directory` with one RSA-2048 key and one DEK wrapped under it.
    static func localVault(directory: String) async throws
        -> (LocalVault, KeyReference, KeyVersion, DEKResolver, SecretBytes, WrappedDEK)
    {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let vault = try LocalVault(configuration: LocalVaultConfiguration(
            directory: URL(fileURLWithPath: directory + "/vault"), masterKey: .bytes(SecretBytes.random(count: 32))))
        let key = try KeyReference("bench-rsa2048")
        let version = try await vault.createKey(key, size: .bits2048)
        let resolver = DEKResolver(vault: vault, cache: DEKCache(configuration: try .init()))
        let dek = DEKWrapping.generateDEK()
        let wrapped = try await resolver.wrap(dek, id: .random(), account: "bench", key: key, version: version.id, created: Date())
        return (vault, key, version, resolver, dek, wrapped)
    }

    /// The local vault's RSA-OAEP-256 unwraps per CPU second, in this process: the work each
    /// unwrap request to cmk-vault does.
    static func localUnwraps(seconds: Double, scratch: String) async throws -> Rate {
        let (vault, key, version, _, _, wrapped) = try await localVault(directory: scratch + "/local-unwrap")
        return try await Rate.measure(units: 1, seconds: seconds) {
            _ = try await vault.unwrap(wrapped.wrappedKey, key: key, version: version.id, algorithm: .rsaOAEP256)
        }
    }

    static func rsa(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        let (vault, key, version, resolver, dek, wrapped) = try await localVault(directory: scratch + "/rsa-vault")

        // Three interleaved rounds (ours, then openssl's), each side's best round counted: on a
        // shared machine a neighbour can only slow a round down, and interleaving gives both
        // sides the same chances. Every round is in the JSON.
        var unwrapRounds: [Rate] = [], wrapRounds: [Rate] = []
        var anchorRounds: [(privatePerSecond: Double, publicPerSecond: Double)] = []
        for _ in 0..<3 {
            unwrapRounds.append(try await Rate.measure(units: 1, seconds: Double(plan.cryptoSeconds)) {
                _ = try await vault.unwrap(wrapped.wrappedKey, key: key, version: version.id, algorithm: .rsaOAEP256)
            })
            wrapRounds.append(try await Rate.measure(units: 1, seconds: Double(plan.cryptoSeconds)) {
                _ = try await resolver.wrap(dek, id: wrapped.id, account: "bench", key: key, version: version.id, created: wrapped.created)
            })
            anchorRounds.append(try OpenSSLAnchor.rsa2048(seconds: plan.opensslSeconds))
        }
        func rounds(_ values: [Double], _ name: String) -> [String: Double] {
            Dictionary(uniqueKeysWithValues: values.enumerated().map { ("\(name) round \($0.offset + 1)", $0.element) })
        }
        let unwraps = unwrapRounds.max { $0.perCPUSecond < $1.perCPUSecond }!
        let wraps = wrapRounds.max { $0.perCPUSecond < $1.perCPUSecond }!
        results.add(Figure(suite: "rsa", name: "local vault unwraps (RSA-OAEP-256 decrypt)", value: unwraps.perCPUSecond, unit: "op/s",
                           anchor: anchorRounds.map(\.privatePerSecond).max()!, anchorName: "openssl rsa2048 private ops", target: 0.9,
                           detail: ["wall op/s": unwraps.perWallSecond]
                               .merging(rounds(unwrapRounds.map(\.perCPUSecond), "op/s")) { a, _ in a }
                               .merging(rounds(anchorRounds.map(\.privatePerSecond), "openssl")) { a, _ in a }))
        results.add(Figure(suite: "rsa", name: "local wraps (RSA-OAEP-256 encrypt)", value: wraps.perCPUSecond, unit: "op/s",
                           anchor: anchorRounds.map(\.publicPerSecond).max()!, anchorName: "openssl rsa2048 public ops", target: nil,
                           detail: ["wall op/s": wraps.perWallSecond]
                               .merging(rounds(wrapRounds.map(\.perCPUSecond), "op/s")) { a, _ in a }
                               .merging(rounds(anchorRounds.map(\.publicPerSecond), "openssl")) { a, _ in a }))
    }
}
