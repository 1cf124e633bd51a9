@testable import CMKPKCS11
import CMKCore
import CMKEnvelope
import CPKCS11
import Foundation
import Testing

/// The session pool's recovery on a real SoftHSM token: the application logged out and the pool's
/// sessions closed behind its back, through a session of the same module instance (PKCS#11 keeps
/// the login per application and token, so a C_Logout on any session logs every session out).
@Suite("PKCS#11 provider: session recovery on SoftHSM", .serialized)
struct PKCS11RecoveryTests {
    /// A token with an AES version, one DEK wrapped under it and unwrapped once (the pool logged in once).
    private func prepared() async throws -> (SoftHSMToken, PKCS11KeyVault, KeyReference, String, SecretBytes, Data) {
        let token = try SoftHSMToken.make()
        let vault = try token.vault(sessions: 2)
        let key = try KeyReference("recovered-key")
        let version = try await vault.createKey(key, size: .bits2048)
        let dek = DEKWrapping.generateDEK()
        let wrapped = try await vault.wrap(dek, key: key, version: version.id, algorithm: .aesKeyWrapPad)
        #expect(try await vault.unwrap(wrapped, key: key, version: version.id, algorithm: .aesKeyWrapPad) == dek)
        #expect(vault.poolStatistics.logins == 1)
        return (token, vault, key, version.id, dek, wrapped)
    }

    /// Runs `body` on a session of the vault's module opened here, not through the pool.
    private func behindThePool(_ vault: PKCS11KeyVault, _ token: SoftHSMToken, _ body: (CK_FUNCTION_LIST, CK_SLOT_ID, CK_SESSION_HANDLE) -> CK_RV?) throws -> CK_RV? {
        let module = vault.pool.module
        let slot = try #require(try module.tokens().first { $0.label == token.label }?.slot)
        var session: CK_SESSION_HANDLE = 0
        try module.call("C_OpenSession") { $0.C_OpenSession?(slot, CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION), nil, nil, &session) }
        return body(module.functions.pointee, slot, session)
    }

    @Test("after C_Logout behind the pool's back an unwrap succeeds: the pool logged in again (C_Login counted)")
    func reloginAfterLogout() async throws {
        let (token, vault, key, version, dek, wrapped) = try await prepared()
        defer { token.remove() }
        let rv = try behindThePool(vault, token) { functions, _, session in
            defer { _ = functions.C_CloseSession?(session) }
            return functions.C_Logout?(session)
        }
        #expect(rv == 0)
        let opened = vault.poolStatistics.opened
        #expect(try await vault.unwrap(wrapped, key: key, version: version, algorithm: .aesKeyWrapPad) == dek)
        let statistics = vault.poolStatistics
        #expect(statistics.logins == 2)
        #expect(statistics.opened == opened)  // the same idle session, logged in again: no new session, no new pool
        #expect(try await vault.unwrap(wrapped, key: key, version: version, algorithm: .aesKeyWrapPad) == dek)
        #expect(vault.poolStatistics.logins == 2)
    }

    @Test("after C_CloseAllSessions behind the pool's back an unwrap succeeds on a reopened, logged-in session")
    func reopenAfterSessionsClosed() async throws {
        let (token, vault, key, version, dek, wrapped) = try await prepared()
        defer { token.remove() }
        // The shim declares C_CloseAllSessions untyped (the provider never calls it): its C signature here.
        typealias CloseAllSessions = @convention(c) (CK_SLOT_ID) -> CK_RV
        let rv = try behindThePool(vault, token) { functions, slot, _ in
            functions.C_CloseAllSessions.map { unsafeBitCast($0, to: CloseAllSessions.self)(slot) }
        }
        #expect(rv == 0)
        let before = vault.poolStatistics
        #expect(try await vault.unwrap(wrapped, key: key, version: version, algorithm: .aesKeyWrapPad) == dek)
        let after = vault.poolStatistics
        #expect(after.opened > before.opened)
        // Closing every session of the application also logs it out (PKCS#11 3.0 §5.6, C_CloseAllSessions).
        #expect(after.logins == 2)
        let again = DEKWrapping.generateDEK()
        let rewrapped = try await vault.wrap(again, key: key, version: version, algorithm: .aesKeyWrapPad)
        #expect(try await vault.unwrap(rewrapped, key: key, version: version, algorithm: .aesKeyWrapPad) == again)
    }

    @Test("a wrong PIN is refused as unauthorized naming C_Login and CKR_PIN_INCORRECT, and no login is counted")
    func wrongPIN() async throws {
        let token = try SoftHSMToken.make()
        defer { token.remove() }
        let wrongPin = token.directory.appendingPathComponent("wrong.pin").path
        FileManager.default.createFile(atPath: wrongPin, contents: Data("0000-wrong\n".utf8), attributes: [.posixPermissions: 0o600])
        var configuration = token.configuration(sessions: 2)
        configuration.pin = .file(wrongPin)
        let vault = try SoftHSMToken.environmentLock.withLock { _ in
            setenv("SOFTHSM2_CONF", token.configFile, 1)
            return try PKCS11KeyVault(configuration: configuration)
        }
        do {
            _ = try await vault.createKey(try KeyReference("never-made"), size: .bits2048)
            Issue.record("a wrong PIN was accepted")
        } catch let error as VaultError {
            #expect(error.code == .unauthorized)
            #expect(error.reason.contains("C_Login returned CKR_PIN_INCORRECT"))
            #expect(!error.reason.contains("0000-wrong"))
        }
        #expect(vault.poolStatistics.logins == 0)
        #expect(vault.poolStatistics.inUse == 0)
    }
}
