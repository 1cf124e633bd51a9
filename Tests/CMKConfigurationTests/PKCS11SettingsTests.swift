import CMKCore
@testable import CMKConfiguration
import Testing

/// `vault.provider: pkcs11` and `vault.pkcs11` (issue 18): every key read, every refusal naming its key.
@Suite("vault.pkcs11")
struct PKCS11SettingsTests {
    static func vault(_ settings: String) -> String {
        "vault:\n  provider: pkcs11\n  key: root-aes\n  pkcs11:\n" + settings
    }
    static let minimal = "    module: /usr/lib/softhsm/libsofthsm2.so\n    token-label: cmk-root\n    pin-file: /etc/cmk-syncer/token.pin\n"

    @Test func everyKeyIsRead() throws {
        let configuration = try Fixture.parse(Fixture.yaml(vault: Self.vault(Self.minimal + "    retention-days: 30\n    purge-protection: false\n    sessions: 8\n")))
        #expect(configuration.vault.provider == .pkcs11)
        #expect(configuration.vault.key == (try KeyReference("root-aes")))
        #expect(configuration.vault.local == nil && configuration.vault.azure == nil)
        #expect(configuration.vault.pkcs11 == SyncerConfiguration.Vault.PKCS11Settings(
            module: "/usr/lib/softhsm/libsofthsm2.so", tokenLabel: "cmk-root", pin: .file("/etc/cmk-syncer/token.pin"),
            retentionDays: 30, purgeProtection: false, sessions: 8))
    }

    @Test func defaultsAndCredential() throws {
        let configuration = try Fixture.parse(Fixture.yaml(vault: Self.vault("    module: hsm/lib.so\n    token-label: T\n    pin-credential: token.pin\n")))
        // A relative module path is against the configuration file's directory.
        #expect(configuration.vault.pkcs11 == SyncerConfiguration.Vault.PKCS11Settings(
            module: "/etc/cmk-syncer/hsm/lib.so", tokenLabel: "T", pin: .credential("token.pin"), retentionDays: 90, purgeProtection: true, sessions: 4))
    }

    @Test func settingsAreRequired() {
        Fixture.expectFailure(Fixture.yaml(vault: "vault:\n  provider: pkcs11\n"), at: "vault.pkcs11",
                              "is required when vault.provider is 'pkcs11': a mapping with module, token-label and pin-file or pin-credential", code: .missingKey)
    }

    @Test(arguments: [
        ("    token-label: T\n    pin-file: /p\n", "vault.pkcs11.module",
         "is required: the path of the HSM's PKCS#11 library (SoftHSM: /usr/lib/softhsm/libsofthsm2.so)"),
        ("    module: /m.so\n    pin-file: /p\n", "vault.pkcs11.token-label",
         "is required: the label of the token that holds the key (softhsm2-util --show-slots, pkcs11-tool --list-token-slots)"),
        ("    module: /m.so\n    token-label: T\n", "vault.pkcs11",
         "needs exactly one of pin-file (a path to a 0600 file holding the token's user PIN) or pin-credential (a systemd credential name)"),
    ])
    func missingKeys(settings: String, keyPath: String, reason: String) {
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault(settings)), at: keyPath, reason, code: .missingKey)
    }

    @Test(arguments: [
        (minimal + "    pin-credential: p\n", "vault.pkcs11.pin-credential", "pin-file and pin-credential are both set: keep exactly one"),
        ("    module: /m.so\n    token-label: \"\(String(repeating: "x", count: 33))\"\n    pin-file: /p\n", "vault.pkcs11.token-label",
         "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' is not a token label (accepted: 1-32 bytes without leading or trailing blanks, as CK_TOKEN_INFO.label holds)"),
        ("    module: /m.so\n    token-label: T\n    pin-credential: a/b\n", "vault.pkcs11.pin-credential",
         "'a/b' is not a systemd credential name (accepted: a plain file name of 1-255 bytes, no '/', not '.' or '..')"),
    ])
    func badValues(settings: String, keyPath: String, reason: String) {
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault(settings)), at: keyPath, reason, code: .invalidValue)
    }

    @Test(arguments: [("retention-days: 6", "vault.pkcs11.retention-days"), ("retention-days: 91", "vault.pkcs11.retention-days"),
                      ("sessions: 0", "vault.pkcs11.sessions"), ("sessions: 65", "vault.pkcs11.sessions")])
    func rangesAreChecked(line: String, keyPath: String) {
        let error = Fixture.failure(Fixture.yaml(vault: Self.vault(Self.minimal + "    \(line)\n")))
        #expect(error?.keyPath == keyPath)
    }

    @Test func wrapAlgorithm() {
        let rsa = try? Fixture.parse(Fixture.yaml(vault: Self.vault(Self.minimal + "    wrap-algorithm: RSA-OAEP-256\n")))
        #expect(rsa?.vault.pkcs11?.wrapAlgorithm == .rsaOAEP256)
        let aes = try? Fixture.parse(Fixture.yaml(vault: Self.vault(Self.minimal + "    wrap-algorithm: A256KWP\n")))
        #expect(aes?.vault.pkcs11?.wrapAlgorithm == .aesKeyWrapPad)
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault(Self.minimal + "    wrap-algorithm: RSA-OAEP\n")), at: "vault.pkcs11.wrap-algorithm",
                              "'RSA-OAEP' is not a wrap algorithm (accepted: A256KWP, RSA-OAEP-256)", code: .invalidValue)
    }

    @Test func thePINIsNeverInline() {
        let error = Fixture.failure(Fixture.yaml(vault: Self.vault(Self.minimal + "    user-pin: 1234\n")))
        #expect(error?.code == .inlineSecret)
        #expect(error?.keyPath == "vault.pkcs11.user-pin")
        #expect(error?.description.contains("1234") == false)
        #expect(error?.reason == "secrets are never read from the configuration file: name a file with pin-file or a systemd credential with pin-credential")
    }

    @Test func unknownKeysAreNamed() {
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault(Self.minimal + "    slot: 0\n")), at: "vault.pkcs11.slot",
                              "unknown key (accepted: module, token-label, pin-file, pin-credential, retention-days, purge-protection, sessions, wrap-algorithm)", code: .unknownKey)
    }
}
