import CMKCore
import CMKEnvelope
import CMKPKCS11
import Foundation
import Testing

/// What SoftHSM 2.6.1 really does with RSA-OAEP-256 (docs/providers/pkcs11.md, "The real operation
/// on both tokens"): the key pair is generated and its public key read, but the token refuses to
/// decrypt OAEP with SHA-256/MGF1-SHA-256 (CKR_ARGUMENTS_BAD); the provider says so and names the fix.
@Suite("PKCS#11 provider: RSA-OAEP-256 on SoftHSM 2.6.1", .serialized)
struct PKCS11RSAOnSoftHSMTests {
    @Test("an RSA version is made on SoftHSM, but its OAEP-SHA-256 unwrap is refused as unsupported naming CKR_ARGUMENTS_BAD")
    func softHSMRefusesOAEP256() async throws {
        let token = try SoftHSMToken.make()
        defer { token.remove() }
        let vault = try token.vault(clock: SystemWallClock(), sessions: 2, wrapAlgorithm: .rsaOAEP256)
        #expect(vault.capabilities.wrapAlgorithm == .rsaOAEP256 && vault.capabilities.exportsPublicKey)
        let key = try KeyReference("root-rsa")
        let version = try await vault.createKey(key, size: .bits2048)
        let material = try await vault.publicKey(of: key, version: version.id)
        #expect(material.bitCount == 2048)
        let dek = DEKWrapping.generateDEK()
        let wrapped = try DEKWrapping.wrap(dek, with: material)
        do {
            _ = try await vault.unwrap(wrapped, key: key, version: version.id, algorithm: .rsaOAEP256)
            Issue.record("SoftHSM 2.6.1 decrypted OAEP-SHA-256: the documented finding no longer holds, update docs/providers/pkcs11.md")
        } catch let error as VaultError {
            #expect(error.code == .unsupported)
            #expect(error.reason.contains("C_DecryptInit returned CKR_ARGUMENTS_BAD") && error.reason.contains("A256KWP"))
        }
    }
}

@Suite("PKCS#11 provider: RSA-OAEP-256 DEKs under wrap-algorithm A256KWP", .serialized)
struct PKCS11MoveBackTests {
    @Test("a provider configured for A256KWP still takes RSA-OAEP-256 unwraps to the token (the move back), and refuses the wrong version kind")
    func a256kwpProviderUnwrapsRSAOnTheToken() async throws {
        let token = try SoftHSMToken.make()
        defer { token.remove() }
        let rsa = try token.vault(clock: SystemWallClock(), sessions: 2, wrapAlgorithm: .rsaOAEP256)
        let key = try KeyReference("root-rsa")
        let v1 = try await rsa.createKey(key, size: .bits2048)
        let wrapped = try DEKWrapping.wrap(DEKWrapping.generateDEK(), with: try await rsa.publicKey(of: key, version: v1.id))
        let kwp = try token.vault(clock: SystemWallClock(), sessions: 2, wrapAlgorithm: .aesKeyWrapPad)
        #expect(kwp.capabilities.wrapAlgorithm == .aesKeyWrapPad)
        do {
            _ = try await kwp.unwrap(wrapped, key: key, version: v1.id, algorithm: .rsaOAEP256)
            Issue.record("SoftHSM 2.6.1 decrypted OAEP-SHA-256: update docs/providers/pkcs11.md")
        } catch let error as VaultError {
            // It reached the token (SoftHSM's own refusal), not the provider's algorithm check.
            #expect(error.code == .unsupported && error.reason.contains("C_DecryptInit returned CKR_ARGUMENTS_BAD"))
        }
        let v2 = try await kwp.rotateKey(key)
        do {
            _ = try await kwp.unwrap(wrapped, key: key, version: v2.id, algorithm: .rsaOAEP256)
            Issue.record("an RSA-OAEP-256 wrapping was taken to an AES version")
        } catch let error as VaultError {
            #expect(error.code == .invalidInput && error.reason.contains("is an AES-256 key"))
        }
    }
}
