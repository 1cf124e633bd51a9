import CMKCore
import Foundation
import Testing

private let t0 = Date(timeIntervalSince1970: 1_767_225_600)

@Suite("Key version usability (SPEC §3)")
struct KeyVersionTests {
    @Test("an enabled version without dates wraps and unwraps")
    func plain() {
        let version = KeyVersion(id: "a", created: t0)
        #expect(version.canWrap(at: t0))
        #expect(version.canUnwrap)
    }

    @Test("a disabled version neither wraps nor unwraps")
    func disabled() {
        let version = KeyVersion(id: "a", created: t0, enabled: false)
        #expect(version.wrapRefusal(at: t0) == .disabled)
        #expect(!version.canUnwrap)
    }

    @Test("expiry stops wrapping at the instant it is reached, never unwrapping")
    func expired() {
        let expires = t0.addingTimeInterval(100)
        let version = KeyVersion(id: "a", created: t0, expires: expires)
        #expect(version.canWrap(at: expires.addingTimeInterval(-0.001)))
        #expect(version.wrapRefusal(at: expires) == .expired(expires: expires))
        #expect(version.canUnwrap)
    }

    @Test("not-before stops wrapping until it is reached, never unwrapping")
    func notYetValid() {
        let notBefore = t0.addingTimeInterval(100)
        let version = KeyVersion(id: "a", created: t0, notBefore: notBefore)
        #expect(version.wrapRefusal(at: t0) == .notYetValid(notBefore: notBefore))
        #expect(version.canWrap(at: notBefore))
        #expect(version.canUnwrap)
    }

    @Test("key state orders versions oldest first and picks the newest wrappable one")
    func stateOrdering() throws {
        let key = try KeyReference("k")
        let old = KeyVersion(id: "old", created: t0)
        let mid = KeyVersion(id: "mid", created: t0.addingTimeInterval(10))
        let new = KeyVersion(id: "new", created: t0.addingTimeInterval(20), enabled: false)
        let state = KeyState(key: key, versions: [new, old, mid])
        #expect(state.versions.map(\.id) == ["old", "mid", "new"])
        #expect(state.current?.id == "new")
        #expect(state.newestWrappable(at: t0.addingTimeInterval(30))?.id == "mid")
    }

    @Test("versions created at the same instant keep the provider's order")
    func stableTies() throws {
        let state = KeyState(key: try KeyReference("k"), versions: [
            KeyVersion(id: "1", created: t0), KeyVersion(id: "2", created: t0), KeyVersion(id: "3", created: t0),
        ])
        #expect(state.versions.map(\.id) == ["1", "2", "3"])
    }

    @Test("key names follow Azure's rule", arguments: [
        ("data-at-rest-rsa2048", true), ("a", true), (String(repeating: "k", count: 127), true),
        ("", false), (String(repeating: "k", count: 128), false), ("has space", false), ("under_score", false), ("ключ", false),
    ])
    func keyNames(name: String, valid: Bool) {
        #expect(KeyReference.isValid(name) == valid)
        #expect(((try? KeyReference(name)) != nil) == valid)
    }

    @Test("an invalid key name error says what is accepted")
    func keyNameError() {
        #expect(throws: VaultError.self) { try KeyReference("bad name") }
        do {
            _ = try KeyReference("bad name")
        } catch {
            #expect(error.reason.contains("'bad name'"))
            #expect(error.reason.contains("A-Z, a-z, 0-9 and '-'"))
            #expect(error.category == .configuration)
        }
    }
}

@Suite("Keyring invariants")
struct KeyringTests {
    func keyring(deks: [WrappedDEK], active: DEKID) throws -> Keyring {
        Keyring(account: "acct", key: try KeyReference("k"), generation: 1, deks: deks, activeDEK: active)
    }

    @Test("referenced versions and binding")
    func references() throws {
        let a = WrappedDEK(id: .random(), keyVersion: "v1", wrappedKey: Data([1]), created: t0)
        let b = WrappedDEK(id: .random(), keyVersion: "v2", wrappedKey: Data([2]), created: t0)
        let c = WrappedDEK(id: .random(), keyVersion: "v1", wrappedKey: Data([3]), created: t0)
        let ring = try keyring(deks: [a, b, c], active: b.id)
        #expect(ring.referencedVersions == ["v1", "v2"])
        #expect(ring.binding == "v2")
        try ring.validate()
    }

    @Test("validation refuses an empty keyring, a missing active DEK, duplicates and empty wrappings")
    func invalid() throws {
        let a = WrappedDEK(id: .random(), keyVersion: "v1", wrappedKey: Data([1]), created: t0)
        #expect(throws: VaultError(.corrupt, "")) { try keyring(deks: [], active: a.id).validate() }
        #expect(throws: VaultError(.corrupt, "")) { try keyring(deks: [a], active: .random()).validate() }
        #expect(throws: VaultError(.corrupt, "")) { try keyring(deks: [a, a], active: a.id).validate() }
        var empty = a
        empty.wrappedKey = Data()
        #expect(throws: VaultError(.corrupt, "")) { try keyring(deks: [empty], active: a.id).validate() }
    }

    @Test("a keyring survives a JSON round trip")
    func codable() throws {
        let a = WrappedDEK(id: .random(), keyVersion: "v1", wrappedKey: Data([1, 2, 3]), created: t0)
        var ring = try keyring(deks: [a], active: a.id)
        ring.suspension = Suspension(reason: .keyPulled, since: t0)
        let data = try JSONEncoder().encode(ring)
        #expect(try JSONDecoder().decode(Keyring.self, from: data) == ring)
    }
}

@Suite("Secret bytes")
struct SecretBytesTests {
    @Test("prints redacted everywhere")
    func redacted() {
        let secret = SecretBytes(copying: [0xde, 0xad, 0xbe, 0xef])
        #expect("\(secret)" == "<redacted>")
        #expect(!String(reflecting: secret).contains("de"))
        #expect(!String(describing: [secret]).contains("222"))
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("222") && !dumped.contains("0xde"))
    }

    @Test("compares contents")
    func equality() {
        #expect(SecretBytes(copying: [1, 2, 3]) == SecretBytes(copying: [1, 2, 3]))
        #expect(SecretBytes(copying: [1, 2, 3]) != SecretBytes(copying: [1, 2, 4]))
        #expect(SecretBytes(copying: [1, 2, 3]) != SecretBytes(copying: [1, 2]))
    }

    @Test("zeroize overwrites the bytes")
    func zeroize() {
        let secret = SecretBytes.random(count: 32)
        #expect(secret.withUnsafeBytes { $0.contains { $0 != 0 } })
        secret.zeroize()
        #expect(secret.isZeroized)
        #expect(secret.withUnsafeBytes { $0.allSatisfy { $0 == 0 } })
    }

    @Test("random secrets differ")
    func random() {
        #expect(SecretBytes.random(count: 32) != SecretBytes.random(count: 32))
    }
}

@Suite("Error codes")
struct ErrorTests {
    @Test("vault error categories drive retry logic", arguments: [
        (VaultError.Code.throttled, ErrorCategory.transient), (.unavailable, .transient),
        (.deleted, .revoked), (.disabled, .revoked), (.forbidden, .revoked), (.unauthorized, .revoked), (.notFound, .revoked),
        (.misconfigured, .configuration), (.invalidInput, .configuration), (.corrupt, .internal),
    ])
    func categories(code: VaultError.Code, category: ErrorCategory) {
        #expect(VaultError(code, "x").category == category)
    }

    @Test("equality compares the code only and descriptions carry the reason")
    func equality() {
        let a = VaultError(.throttled, "vault said 429", retryAfter: .seconds(5))
        #expect(a == VaultError(.throttled, "other"))
        #expect(a != VaultError(.unavailable, "vault said 429"))
        #expect(a.description == "vault.throttled: vault said 429 (retry after 5.0 seconds)")
        #expect(a.codeName == "vault.throttled")
    }

    @Test("DEK ids parse and print as 32 hex digits")
    func dekIDs() throws {
        let id = DEKID.random()
        #expect(id.description.count == 32)
        #expect(try DEKID(hex: id.description) == id)
        #expect(throws: VaultError.self) { try DEKID(hex: "abc") }
        #expect(throws: VaultError.self) { try DEKID(hex: String(repeating: "g", count: 32)) }
    }

    @Test("object names refuse traversal and odd characters", arguments: [
        ("a", true), ("dir/obj-1.bin", true), ("A_b.c", true),
        ("", false), ("../x", false), ("a/../b", false), ("/abs", false), ("a//b", false), (".hidden", false), ("a/.b", false), ("sp ace", false), ("a/", false),
    ])
    func objectNames(name: String, valid: Bool) {
        #expect(((try? ObjectName(name)) != nil) == valid)
    }
}
