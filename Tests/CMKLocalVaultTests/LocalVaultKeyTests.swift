import CMKCore
import CMKEnvelope
import CMKLocalVault
import Foundation
import Testing

@Suite("LocalVault keys and versions")
struct LocalVaultKeyTests {
    @Test func capabilities() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            #expect(vault.capabilities == VaultCapabilities(provider: "local", exportsPublicKey: true, wrapsInVault: true,
                                                            algorithms: [.rsaOAEP256], managesKeys: true))
        }
    }

    @Test func createRotateAndSnapshotKeepOrder() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let ref = key()
            #expect(try await vault.snapshot(of: ref) == .missing(ref))
            let first = try await vault.createKey(ref, size: .bits2048)
            #expect(first.id.count == 32)
            #expect(first.id.allSatisfy { "0123456789abcdef".contains($0) })
            #expect(first.created == fixture.clock.now())
            #expect(first.enabled && first.notBefore == nil && first.expires == nil)
            fixture.clock.advance(seconds: 10)
            let second = try await vault.rotateKey(ref)
            fixture.clock.advance(seconds: 10)
            let third = try await vault.rotateKey(ref)
            #expect(Set([first.id, second.id, third.id]).count == 3)

            let state = try await presentState(vault, ref)
            #expect(state.versions == [first, second, third])
            #expect(state.current == third)

            // A second vault instance on the same directory reads the same state.
            let reopened = try fixture.open()
            #expect(try await reopened.snapshot(of: ref) == .present(state))
        }
    }

    @Test func createRefusesExistingAndDeletedKeys() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let ref = key()
            _ = try await vault.createKey(ref, size: .bits2048)
            #expect(await vaultError { _ = try await vault.createKey(ref, size: .bits2048) }?.code == .conflict)
            _ = try await vault.deleteKey(ref)
            let error = await vaultError { _ = try await vault.createKey(ref, size: .bits2048) }
            #expect(error?.code == .conflict)
            #expect(error?.reason.contains("deleted") == true)
        }
    }

    @Test(arguments: [RSAKeySize.bits3072, .bits4096])
    func largerKeySizes(_ size: RSAKeySize) async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let ref = key("big")
            let version = try await vault.createKey(ref, size: size)
            #expect(try await vault.publicKey(of: ref, version: version.id).bitCount == size.rawValue)
            let rotated = try await vault.rotateKey(ref)
            #expect(try await vault.publicKey(of: ref, version: rotated.id).bitCount == size.rawValue)
        }
    }

    @Test func unknownKeyAndVersion() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let ref = key()
            let dek = DEKWrapping.generateDEK()
            #expect(await vaultError { _ = try await vault.publicKey(of: ref, version: "0") }?.code == .notFound)
            #expect(await vaultError { _ = try await vault.rotateKey(ref) }?.code == .notFound)
            #expect(await vaultError { _ = try await vault.deleteKey(ref) }?.code == .notFound)
            _ = try await vault.createKey(ref, size: .bits2048)
            let missing = String(repeating: "0", count: 32)
            let error = await vaultError { _ = try await vault.publicKey(of: ref, version: missing) }
            #expect(error?.code == .notFound)
            #expect(error?.reason.contains(missing) == true)
            #expect(await vaultError { _ = try await vault.wrap(dek, key: ref, version: missing, algorithm: .rsaOAEP256) }?.code == .notFound)
            #expect(await vaultError { _ = try await vault.unwrap(Data(count: 256), key: ref, version: missing, algorithm: .rsaOAEP256) }?.code == .notFound)
            #expect(await vaultError { _ = try await vault.updateVersion(ref, version: missing, KeyVersionUpdate(enabled: false)) }?.code == .notFound)
        }
    }

    @Test func updateAttributes() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let ref = key()
            let version = try await vault.createKey(ref, size: .bits2048)
            let now = fixture.clock.now()
            let notBefore = now.addingTimeInterval(60)
            let expires = now.addingTimeInterval(3600)
            let updated = try await vault.updateVersion(ref, version: version.id,
                                                        KeyVersionUpdate(enabled: false, notBefore: .set(notBefore), expires: .set(expires)))
            #expect(updated == KeyVersion(id: version.id, created: version.created, enabled: false, notBefore: notBefore, expires: expires))
            #expect(try await presentState(vault, ref).versions == [updated])

            let partly = try await vault.updateVersion(ref, version: version.id, KeyVersionUpdate(enabled: true, notBefore: .cleared))
            #expect(partly == KeyVersion(id: version.id, created: version.created, enabled: true, notBefore: nil, expires: expires))
            #expect(try await presentState(vault, ref).versions == [partly])
        }
    }

    @Test func wrapAndUnwrapRoundTrip() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let ref = key()
            let version = try await vault.createKey(ref, size: .bits2048)
            let dek = DEKWrapping.generateDEK()
            let inVault = try await vault.wrap(dek, key: ref, version: version.id, algorithm: .rsaOAEP256)
            let local = try DEKWrapping.wrap(dek, with: try await vault.publicKey(of: ref, version: version.id))
            #expect(try await vault.unwrap(inVault, key: ref, version: version.id, algorithm: .rsaOAEP256) == dek)
            #expect(try await vault.unwrap(local, key: ref, version: version.id, algorithm: .rsaOAEP256) == dek)
            // Cached second unwrap gives the same answer.
            #expect(try await vault.unwrap(local, key: ref, version: version.id, algorithm: .rsaOAEP256) == dek)

            // Another version cannot unwrap it.
            let other = try await vault.rotateKey(ref)
            #expect(await vaultError { _ = try await vault.unwrap(local, key: ref, version: other.id, algorithm: .rsaOAEP256) }?.code == .invalidInput)
            #expect(await vaultError { _ = try await vault.wrap(dek, key: ref, version: version.id, algorithm: .aesKeyWrapPad) }?.code == .unsupported)
        }
    }

    @Test func wrapRefusedForDisabledExpiredAndNotYetValidButUnwrapOnlyForDisabled() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let ref = key()
            let version = try await vault.createKey(ref, size: .bits2048)
            let dek = DEKWrapping.generateDEK()
            let wrapped = try await vault.wrap(dek, key: ref, version: version.id, algorithm: .rsaOAEP256)
            let now = fixture.clock.now()

            // Expired: exactly at `expires` wrapping stops; unwrap still works.
            _ = try await vault.updateVersion(ref, version: version.id, KeyVersionUpdate(expires: .set(now)))
            let expired = await vaultError { _ = try await vault.wrap(dek, key: ref, version: version.id, algorithm: .rsaOAEP256) }
            #expect(expired?.code == .invalidInput)
            #expect(expired?.reason.contains("expired") == true)
            #expect(try await vault.unwrap(wrapped, key: ref, version: version.id, algorithm: .rsaOAEP256) == dek)

            // Not yet valid.
            _ = try await vault.updateVersion(ref, version: version.id,
                                              KeyVersionUpdate(notBefore: .set(now.addingTimeInterval(60)), expires: .cleared))
            let early = await vaultError { _ = try await vault.wrap(dek, key: ref, version: version.id, algorithm: .rsaOAEP256) }
            #expect(early?.code == .invalidInput)
            #expect(early?.reason.contains("not valid before") == true)
            #expect(try await vault.unwrap(wrapped, key: ref, version: version.id, algorithm: .rsaOAEP256) == dek)
            fixture.clock.advance(seconds: 60)
            _ = try await vault.wrap(dek, key: ref, version: version.id, algorithm: .rsaOAEP256)

            // Disabled: neither wrap nor unwrap, even with the private key already cached.
            _ = try await vault.updateVersion(ref, version: version.id, KeyVersionUpdate(enabled: false))
            #expect(await vaultError { _ = try await vault.wrap(dek, key: ref, version: version.id, algorithm: .rsaOAEP256) }?.code == .disabled)
            #expect(await vaultError { _ = try await vault.unwrap(wrapped, key: ref, version: version.id, algorithm: .rsaOAEP256) }?.code == .disabled)
            // The public key is still available for a disabled version.
            _ = try await vault.publicKey(of: ref, version: version.id)

            _ = try await vault.updateVersion(ref, version: version.id, KeyVersionUpdate(enabled: true))
            #expect(try await vault.unwrap(wrapped, key: ref, version: version.id, algorithm: .rsaOAEP256) == dek)
        }
    }

    @Test func disableSeenThroughAnotherInstance() async throws {
        try await withFixture { fixture in
            let daemon = try fixture.open()
            let operator_ = try fixture.open()
            let ref = key()
            let version = try await daemon.createKey(ref, size: .bits2048)
            let dek = DEKWrapping.generateDEK()
            let wrapped = try await daemon.wrap(dek, key: ref, version: version.id, algorithm: .rsaOAEP256)
            #expect(try await daemon.unwrap(wrapped, key: ref, version: version.id, algorithm: .rsaOAEP256) == dek)
            _ = try await operator_.updateVersion(ref, version: version.id, KeyVersionUpdate(enabled: false))
            #expect(await vaultError { _ = try await daemon.unwrap(wrapped, key: ref, version: version.id, algorithm: .rsaOAEP256) }?.code == .disabled)
            _ = try await operator_.updateVersion(ref, version: version.id, KeyVersionUpdate(enabled: true))
            _ = try await operator_.deleteKey(ref)
            #expect(await vaultError { _ = try await daemon.unwrap(wrapped, key: ref, version: version.id, algorithm: .rsaOAEP256) }?.code == .deleted)
        }
    }
}
