import CMKCore
@testable import CMKEnvelope
import CMKTesting
import Foundation
import Testing

@Suite("DEK cache (SPEC §6)")
struct DEKCacheTests {
    let clock = ManualClock()

    func cache(ttl: Duration = .seconds(3600), capacity: Int = 100) throws -> DEKCache {
        DEKCache(configuration: try .init(ttl: ttl, capacity: capacity), clock: clock)
    }

    @Test("defaults: one hour, ten thousand entries")
    func defaults() throws {
        let configuration = try DEKCache.Configuration()
        #expect(configuration.ttl == .seconds(3600))
        #expect(configuration.capacity == 10_000)
    }

    @Test("TTL above one hour or below one second is refused", arguments: [Duration.seconds(3601), .milliseconds(10), .seconds(0)])
    func ttlRange(ttl: Duration) {
        #expect(throws: EnvelopeError(.invalidParameter, "")) { _ = try DEKCache.Configuration(ttl: ttl) }
    }

    @Test("hits before the TTL, misses and zeroes at it")
    func ttl() throws {
        let cache = try cache(ttl: .seconds(60))
        let dek = DEKWrapping.generateDEK(), id = DEKID.random()
        cache.insert(dek, account: "a", dek: id)
        let stored = try #require(cache._entryForTesting(account: "a", dek: id))
        clock.advance(by: .seconds(59))
        #expect(cache.get(account: "a", dek: id) == dek)
        clock.advance(by: .seconds(1))
        #expect(cache.get(account: "a", dek: id) == nil)
        #expect(stored.isZeroized)
        #expect(cache.statistics == .init(hits: 1, misses: 1, evictions: 1, entries: 0))
    }

    @Test("the copy handed out survives eviction of the entry")
    func copies() throws {
        let cache = try cache()
        let dek = DEKWrapping.generateDEK(), id = DEKID.random()
        cache.insert(dek, account: "a", dek: id)
        let copy = try #require(cache.get(account: "a", dek: id))
        cache.purge(account: "a")
        #expect(copy == dek)
        #expect(!copy.isZeroized)
    }

    @Test("capacity evicts the oldest entries and zeroes them")
    func capacity() throws {
        let cache = try cache(capacity: 3)
        let ids = (0..<5).map { _ in DEKID.random() }
        var stored: [SecretBytes] = []
        for id in ids {
            cache.insert(DEKWrapping.generateDEK(), account: "a", dek: id)
            stored.append(try #require(cache._entryForTesting(account: "a", dek: id)))
        }
        #expect(cache.get(account: "a", dek: ids[0]) == nil)
        #expect(cache.get(account: "a", dek: ids[1]) == nil)
        #expect(cache.get(account: "a", dek: ids[4]) != nil)
        #expect(stored[0].isZeroized && stored[1].isZeroized && !stored[4].isZeroized)
        #expect(cache.statistics.entries == 3)
        #expect(cache.statistics.evictions == 2)
    }

    @Test("purge drops one account's keys at once and zeroes them")
    func purge() throws {
        let cache = try cache()
        let a1 = DEKID.random(), a2 = DEKID.random(), b1 = DEKID.random()
        cache.insert(DEKWrapping.generateDEK(), account: "a", dek: a1)
        cache.insert(DEKWrapping.generateDEK(), account: "a", dek: a2)
        cache.insert(DEKWrapping.generateDEK(), account: "b", dek: b1)
        let stored = try #require(cache._entryForTesting(account: "a", dek: a1))
        #expect(cache.purge(account: "a") == 2)
        #expect(stored.isZeroized)
        #expect(cache.get(account: "a", dek: a1) == nil)
        #expect(cache.get(account: "b", dek: b1) != nil)
    }

    @Test("keys are per account: the same DEK id under another account misses")
    func perAccount() throws {
        let cache = try cache()
        let id = DEKID.random()
        cache.insert(DEKWrapping.generateDEK(), account: "a", dek: id)
        #expect(cache.get(account: "b", dek: id) == nil)
    }

    @Test("evictExpired sweeps without lookups")
    func sweep() throws {
        let cache = try cache(ttl: .seconds(10))
        cache.insert(DEKWrapping.generateDEK(), account: "a", dek: .random())
        clock.advance(by: .seconds(5))
        cache.insert(DEKWrapping.generateDEK(), account: "a", dek: .random())
        clock.advance(by: .seconds(6))
        #expect(cache.evictExpired() == 1)
        #expect(cache.statistics.entries == 1)
    }

    @Test("the TTL is monotonic: the wall clock stepping back a year keeps no DEK past it")
    func wallClockStepsBack() throws {
        let cache = try cache(ttl: .seconds(10))
        let dek = DEKWrapping.generateDEK(), id = DEKID.random()
        cache.insert(dek, account: "a", dek: id)
        let stored = try #require(cache._entryForTesting(account: "a", dek: id))
        clock.set(clock.now().addingTimeInterval(-365 * 86_400))
        clock.advance(by: .seconds(9))
        #expect(cache.get(account: "a", dek: id) == dek)
        clock.advance(by: .seconds(1))
        #expect(cache.get(account: "a", dek: id) == nil)
        #expect(stored.isZeroized)
    }

    @Test("the TTL is monotonic: the wall clock stepping forward drops no DEK early")
    func wallClockStepsForward() throws {
        let cache = try cache(ttl: .seconds(10))
        let dek = DEKWrapping.generateDEK(), id = DEKID.random()
        cache.insert(dek, account: "a", dek: id)
        clock.set(clock.now().addingTimeInterval(365 * 86_400))
        #expect(cache.get(account: "a", dek: id) == dek)
        #expect(cache.evictExpired() == 0)
    }

    @Test("an expired DEK is zeroed by the next lookup or insert of any key, not only its own")
    func expiredDroppedByAnyCall() throws {
        let cache = try cache(ttl: .seconds(10))
        let first = DEKID.random(), second = DEKID.random()
        cache.insert(DEKWrapping.generateDEK(), account: "a", dek: first)
        let stored = try #require(cache._entryForTesting(account: "a", dek: first))
        clock.advance(by: .seconds(10))
        #expect(cache.get(account: "b", dek: second) == nil)
        #expect(stored.isZeroized)
        #expect(cache._entryForTesting(account: "a", dek: first) == nil)
        #expect(cache.statistics == .init(hits: 0, misses: 1, evictions: 1, entries: 0))
    }

    @Test("a DEK inserted again while cached keeps its first expiry; purged positions are skipped")
    func reinsertAndPurge() throws {
        let cache = try cache(ttl: .seconds(10), capacity: 2)
        let dek = DEKWrapping.generateDEK(), id = DEKID.random(), other = DEKID.random()
        cache.insert(dek, account: "a", dek: id)
        clock.advance(by: .seconds(5))
        cache.insert(dek, account: "a", dek: id)
        cache.insert(DEKWrapping.generateDEK(), account: "b", dek: other)
        clock.advance(by: .seconds(5))
        #expect(cache.get(account: "a", dek: id) == nil)
        #expect(cache.get(account: "b", dek: other) != nil)
        #expect(cache.purge(account: "b") == 1)
        cache.insert(dek, account: "a", dek: id)
        cache.insert(DEKWrapping.generateDEK(), account: "c", dek: other)
        #expect(cache.statistics.entries == 2)
        #expect(cache.get(account: "a", dek: id) == dek)
    }
}

@Suite("DEK wrapping")
struct DEKWrappingTests {
    @Test("local wrap with (n, e) unwraps with the private key; every wrap differs")
    func roundTrip() async throws {
        let vault = InMemoryKeyVault(clock: ManualClock())
        let key = try KeyReference("k")
        let version = try await vault.createKey(key, size: .bits2048)
        let material = try await vault.publicKey(of: key, version: version.id)
        let dek = DEKWrapping.generateDEK()
        let a = try DEKWrapping.wrap(dek, with: material)
        let b = try DEKWrapping.wrap(dek, with: material)
        #expect(a.count == 256)
        #expect(a != b)
        #expect(try await vault.unwrap(a, key: key, version: version.id, algorithm: .rsaOAEP256) == dek)
    }

    @Test("DEKs are 256-bit and random")
    func deks() {
        let a = DEKWrapping.generateDEK()
        #expect(a.count == 32)
        #expect(a != DEKWrapping.generateDEK())
    }

    @Test("a wrapping of the wrong length is refused before the private operation")
    func wrongLength() throws {
        let key = try _RSAKey.make()
        #expect(throws: VaultError(.invalidInput, "")) { _ = try DEKWrapping.unwrap(Data(repeating: 1, count: 100), with: key) }
    }
}

import CryptoExtras
enum _RSAKey {
    static func make() throws -> SecretBytes {
        SecretBytes(copying: try _RSA.Encryption.PrivateKey(keySize: .bits2048).derRepresentation)
    }
}
