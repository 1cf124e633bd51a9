import CMKCore
@testable import CMKConfiguration
import Testing

@Suite("vault")
struct VaultTests {
    static func vault(_ body: String) -> String { "vault:\n" + body }
    static let local = "  local:\n    master-key-file: /k\n"

    @Test func unknownProviderGetsASuggestion() {
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault("  provider: locl\n" + Self.local)), at: "vault.provider",
                              "'locl' is not a vault provider, did you mean 'local'? (accepted: local, azure, pkcs11)", code: .invalidValue)
    }

    @Test func providerIsRequired() {
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault(Self.local)), at: "vault.provider", "is required (accepted: local, azure, pkcs11)", code: .missingKey)
    }

    @Test func vaultIsRequired() {
        Fixture.expectFailure(Fixture.accounts, at: "vault", "is required: a mapping with provider (accepted: local, azure, pkcs11), key and local, azure or pkcs11", code: .missingKey)
    }

    @Test func settingsOfAnotherProviderAreRefused() {
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault("  provider: local\n  pkcs11:\n    module: /x.so\n" + Self.local)),
                              at: "vault.pkcs11", "is for vault.provider 'pkcs11'; the provider is 'local' (remove vault.pkcs11 or change the provider)", code: .unknownKey)
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault("  provider: pkcs11\n" + Self.local)),
                              at: "vault.local", "is for vault.provider 'local'; the provider is 'pkcs11' (remove vault.local or change the provider)", code: .unknownKey)
    }

    @Test(arguments: ["bad_name", "'with space'", "'é'", "''", String(repeating: "k", count: 128)])
    func badKeyNames(name: String) {
        // A long value shows as its first 32 characters and '…'.
        let shown = name.hasPrefix("'") ? String(name.dropFirst().dropLast()) : name
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault("  provider: local\n  key: \(name)\n" + Self.local)), at: "vault.key",
                              "\(Excerpt.quoted(shown)) is not a valid key name (accepted: 1-127 characters of A-Z, a-z, 0-9 and '-')")
    }

    @Test func keyNameIsRead() throws {
        let configuration = try Fixture.parse(Fixture.yaml(vault: Self.vault("  provider: local\n  key: Customer-Key-7\n" + Self.local)))
        #expect(configuration.vault.key == (try KeyReference("Customer-Key-7")))
    }

    @Test func localSettingsAreRequiredForTheLocalProvider() {
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault("  provider: local\n")), at: "vault.local",
                              "is required when vault.provider is 'local': a mapping with master-key-file or master-key-credential", code: .missingKey)
    }

    @Test func masterKeyNeedsOneSource() {
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault("  provider: local\n  local:\n    create: true\n")), at: "vault.local",
                              "needs exactly one of master-key-file (a path to a 0600 file of 32 bytes) or master-key-credential (a systemd credential name)",
                              code: .missingKey)
    }

    @Test func masterKeyTakesOnlyOneSource() {
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault("  provider: local\n  local:\n    master-key-file: /k\n    master-key-credential: k\n")),
                              at: "vault.local.master-key-credential", "master-key-file and master-key-credential are both set: keep exactly one")
    }

    @Test(arguments: ["a/b", "'..'", "'.'", "''"])
    func badCredentialNames(name: String) {
        let shown = name.hasPrefix("'") ? String(name.dropFirst().dropLast()) : name
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault("  provider: local\n  local:\n    master-key-credential: \(name)\n")),
                              at: "vault.local.master-key-credential",
                              "'\(shown)' is not a systemd credential name (accepted: a plain file name of 1-255 bytes, no '/', not '.' or '..')")
    }

    @Test func everyLocalSettingIsRead() throws {
        let configuration = try Fixture.parse(Fixture.yaml(vault: Self.vault("""
              provider: local
              local:
                directory: /srv/vault
                master-key-credential: vault-master-key
                create: true
                key-size: 4096
                retention-days: 7
                purge-protection: false

            """)))
        #expect(configuration.vault.local == .init(directory: "/srv/vault", masterKey: .credential("vault-master-key"), create: true,
                                                   keySize: 4096, retentionDays: 7, purgeProtection: false))
    }

    @Test(arguments: [
        ("key-size: 1024", "vault.local.key-size", "1024 is not an accepted key size (accepted: 2048, 3072, 4096)"),
        ("key-size: 2049", "vault.local.key-size", "2049 is not an accepted key size (accepted: 2048, 3072, 4096)"),
        ("key-size: big", "vault.local.key-size", "expected a whole number (accepted: 1 to 65536), got 'big'"),
        ("retention-days: 6", "vault.local.retention-days", "6 is out of range (accepted: 7 to 90)"),
        ("retention-days: 91", "vault.local.retention-days", "91 is out of range (accepted: 7 to 90)"),
        ("retention-days: '30'", "vault.local.retention-days", "expected a whole number (accepted: 7 to 90), got the quoted string '30'"),
        ("create: yes", "vault.local.create", "expected true or false, got 'yes'"),
        ("purge-protection: 'true'", "vault.local.purge-protection", "expected true or false, got the quoted string 'true'"),
        ("directory: ''", "vault.local.directory", "is empty (expected a path)"),
    ])
    func badLocalValues(line: String, keyPath: String, reason: String) {
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault("  provider: local\n  local:\n    master-key-file: /k\n    \(line)\n")), at: keyPath, reason)
    }

    @Test(arguments: [
        ("master-key", "vault.local.master-key", "name a file with master-key-file or a systemd credential with master-key-credential"),
        ("master_key", "vault.local.master_key", "name a file with master-key-file or a systemd credential with master-key-credential"),
        ("passphrase", "vault.local.passphrase", "name a file with master-key-file or a systemd credential with master-key-credential"),
    ])
    func inlineSecretsInTheLocalVaultAreRefused(key: String, keyPath: String, hint: String) {
        Fixture.expectFailure(Fixture.yaml(vault: Self.vault("  provider: local\n  local:\n    master-key-file: /k\n    \(key): c2VjcmV0\n")),
                              at: keyPath, "secrets are never read from the configuration file: \(hint)", code: .inlineSecret)
    }

    @Test(arguments: [
        ("vault:\n  provider: local\n  client-secret: s3cr3t\n  local:\n    master-key-file: /k\n", "vault.client-secret"),
        ("vault:\n  provider: local\n  token: abc\n  local:\n    master-key-file: /k\n", "vault.token"),
        ("password: hunter2\n" + Fixture.vault, "password"),
    ])
    func inlineSecretsElsewhereAreRefused(vault: String, keyPath: String) {
        Fixture.expectFailure(Fixture.yaml(vault: vault), at: keyPath,
                              "secrets are never read from the configuration file: put the secret in a file or a systemd credential (LoadCredential=) and name that instead",
                              code: .inlineSecret)
    }

    @Test func masterKeyPathOfAFile() throws {
        let configuration = try Fixture.parse(Fixture.yaml())
        #expect(try configuration.masterKeyPath(environment: [:]) == "/etc/cmk-syncer/master.key")
    }

    @Test func masterKeyPathOfACredential() throws {
        let configuration = try Fixture.parse(Fixture.yaml(vault: Self.vault("  provider: local\n  local:\n    master-key-credential: vault-master-key\n")))
        #expect(try configuration.masterKeyPath(environment: ["CREDENTIALS_DIRECTORY": "/run/credentials/cmk-syncer.service"])
                == "/run/credentials/cmk-syncer.service/vault-master-key")
        let error = #expect(throws: ConfigurationError.self) { try configuration.masterKeyPath(environment: [:]) }
        #expect(error?.code == .credentialsDirectoryMissing)
        #expect(error?.keyPath == "vault.local.master-key-credential")
        #expect(error?.description == "/etc/cmk-syncer/cmk-syncer.yaml: vault.local.master-key-credential: the master key is the systemd credential 'vault-master-key' but $CREDENTIALS_DIRECTORY is not set: add LoadCredential=vault-master-key:/etc/cmk-syncer/master.key (or LoadCredentialEncrypted=) to the unit, or use master-key-file")
    }
}
