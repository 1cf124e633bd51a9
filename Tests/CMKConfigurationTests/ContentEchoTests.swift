@testable import CMKConfiguration
import Foundation
import Testing

/// A configuration error reaches the terminal, the journal and `STATUS=`, so it never carries the
/// file's content: nothing of a file that is not YAML or not a mapping (a master key, /etc/passwd
/// named by mistake), and at most a short, escaped excerpt of a value of a mapping.
@Suite("Errors do not echo the file")
struct ContentEchoTests {
    /// Base64 of 32 random bytes: what a master key file holds.
    static func masterKey() -> String {
        Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
    }

    /// Random letters and digits, starting with a letter (a plain scalar, a valid-looking key).
    static func randomWord(_ count: Int) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        let alphanumerics = letters + Array("0123456789")
        return String(letters.randomElement()!) + String((1..<count).map { _ in alphanumerics.randomElement()! })
    }

    /// The pieces of `secret` of `length` characters that appear in `message`.
    static func leaks(of secret: String, in message: String, length: Int) -> [String] {
        let characters = Array(secret)
        guard characters.count >= length else { return message.contains(secret) ? [secret] : [] }
        return (0...(characters.count - length)).map { String(characters[$0..<($0 + length)]) }.filter { message.contains($0) }
    }

    static let passwd = """
        root:x:0:0:root:/root:/bin/bash
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
        alice:x:1000:1000:Alice Liddell,,,:/home/alice:/bin/zsh
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin

        """

    @Test func aMasterKeyNamedAsTheConfigurationIsNotEchoed() throws {
        let directory = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/master.key"
        let key = Self.masterKey()
        try (key + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        #expect(chmod(path, 0o600) == 0)
        let error = #expect(throws: ConfigurationError.self) { try SyncerConfiguration.load(path: path, environment: [:]) }
        let message = try #require(error?.description)
        #expect(Self.leaks(of: key, in: message, length: 5).isEmpty, "\(message)")
        #expect(error?.code == .wrongType)
        #expect(message == "\(path):1:1: is not a YAML mapping (its top level is a single value): a configuration is a mapping with the keys state-directory, runtime-directory, vault, accounts, sync, cache, logging, events, metrics, postgres")
    }

    @Test func rawKeyBytesAreNotEchoed() throws {
        // 32 bytes that are valid UTF-8 but hold control characters: the YAML reader's refusal.
        var bytes = (0..<32).map { _ in UInt8.random(in: 0x20...0x7E) }
        bytes[7] = 0x01
        let text = String(decoding: bytes, as: UTF8.self)
        let error = Fixture.failure(text)
        let message = try #require(error?.description)
        #expect(error?.code == .syntax)
        #expect(Self.leaks(of: text.filter { $0 != "\u{01}" }, in: message, length: 5).isEmpty, "\(message)")
    }

    @Test func etcPasswdIsNotEchoed() throws {
        let error = Fixture.failure(Self.passwd)
        let message = try #require(error?.description)
        for piece in ["root:", ":x:", "daemon", "alice", "Liddell", "nologin", "/bin/", "nonexistent"] {
            #expect(!message.contains(piece), "\(message)")
        }
        #expect(message.hasSuffix(": is not a YAML mapping (its top level is a single value): a configuration is a mapping with the keys state-directory, runtime-directory, vault, accounts, sync, cache, logging, events, metrics, postgres"))
    }

    @Test(arguments: [
        ("- SECRETpart\n- b\n", "a list"),
        ("SECRETpart\n", "a single value"),
        ("'SECRETpart'\n", "a single value"),
        ("&anchor SECRETpart\n", "a single value"),
    ])
    func aTopLevelThatIsNotAMappingIsNamedWithoutItsContent(text: String, kind: String) throws {
        let message = try #require(Fixture.failure(text)?.description)
        #expect(!message.contains("SECRET"), "\(message)")
        #expect(message == "\(Fixture.file):1:1: is not a YAML mapping (its top level is \(kind)): a configuration is a mapping with the keys state-directory, runtime-directory, vault, accounts, sync, cache, logging, events, metrics, postgres")
    }

    /// Texts that are not valid YAML, each holding SECRET: the refusal names the line, not the text.
    @Test(arguments: [
        "vault: [SECRETpart\n",
        "vault:\n\tSECRETpart: 1\n",
        "vault: provider: SECRETpart\n",
        "vault: \"SECRET\\qpart\"\n",
        "SECRETpart: 1\nSECRETpart: 2\n",
        "vault: *SECRETpart\n",
        "vault: 1\n--- SECRETpart\n",
        "vault: 'SECRET\u{01}part'\n",
        "vault: {SECRETpart: 1, SECRETpart: 2}\n",
        "? [SECRETpart]\n: 1\n? [SECRETpart]\n: 2\n",
        "vault: 'SECRETpart\n",
        "vault: !<SECRETpart> x\n- y\n",
    ])
    func yamlErrorsDoNotQuoteTheText(text: String) throws {
        let error = Fixture.failure(text)
        let message = try #require(error?.description)
        #expect(error?.code == .syntax, "\(message)")
        #expect(!message.contains("SECRET"), "\(message)")
        #expect(error?.line != nil, "\(message)")
    }

    @Test func aDuplicateKeyIsNamedByItsLine() {
        let error = Fixture.failure(Fixture.yaml("sync:\n  interval: 5m\n  interval: 10m\n"))
        #expect(error?.code == .syntax)
        #expect(error?.reason == "a key appears twice in one mapping: each key may appear once")
        #expect(error?.line == 8 || error?.line == 9)
    }

    /// Where a value of a mapping is quoted, a 200-character one shows as its first 32 characters and `…`.
    @Test(arguments: [
        "vault: VALUE\naccounts: []\n",
        "vault: \"VALUE\"\naccounts: []\n",
        "accounts: VALUE\n" + Fixture.vault,
        Fixture.yaml(accounts: "accounts:\n  - {name: a, kind: VALUE}\n"),
        Fixture.yaml(accounts: "accounts:\n  - {name: VALUE, kind: file}\n"),
        Fixture.yaml(accounts: "accounts:\n  - {name: a, kind: file, driver: VALUE}\n"),
        Fixture.yaml(accounts: "accounts:\n  - {name: a, kind: file, create: VALUE}\n"),
        Fixture.yaml(accounts: "accounts:\n  - {name: a, kind: file, location: ~VALUE}\n"),
        Fixture.yaml(accounts: "accounts:\n  - {name: a, kind: file, location: /VALUE}\n  - {name: b, kind: file, location: /VALUE}\n"),
        Fixture.yaml(accounts: "accounts:\n  - {name: a, kind: file, location: /VALUE}\n", "state-directory: /VALUE\n"),
        Fixture.yaml(vault: "vault:\n  provider: VALUE\n"),
        Fixture.yaml(vault: "vault:\n  provider: local\n  key: VALUE\n  local: {master-key-file: /k}\n"),
        Fixture.yaml(vault: "vault:\n  provider: local\n  local: {master-key-file: ~VALUE}\n"),
        Fixture.yaml(vault: "vault:\n  provider: local\n  local: {master-key-credential: a/VALUE}\n"),
        Fixture.yaml(vault: "vault:\n  provider: local\n  local: {master-key-file: /k, key-size: 1VALUE}\n"),
        Fixture.yaml(vault: AzureVaultTests.azure("vault-url: https://VALUE.example/x\ntenant-id: \(AzureVaultTests.tenant)\nclient-id: \(AzureVaultTests.client)\nmanaged-identity: true")),
        Fixture.yaml(vault: AzureVaultTests.azure("vault-url: VALUE\ntenant-id: \(AzureVaultTests.tenant)\nclient-id: \(AzureVaultTests.client)\nmanaged-identity: true")),
        Fixture.yaml(vault: AzureVaultTests.azure("vault-url: https://a.vault.azure.net\ntenant-id: VALUE\nclient-id: \(AzureVaultTests.client)\nmanaged-identity: true")),
        Fixture.yaml(vault: AzureVaultTests.azure("vault-url: https://a.vault.azure.net\ntenant-id: \(AzureVaultTests.tenant)\nclient-id: VALUE\nmanaged-identity: true")),
        Fixture.yaml(vault: AzureVaultTests.azure("vault-url: https://a.vault.azure.net\napi-version: VALUE\ntenant-id: \(AzureVaultTests.tenant)\nclient-id: \(AzureVaultTests.client)\nmanaged-identity: true")),
        Fixture.yaml("sync:\n  interval: VALUE\n"),
        Fixture.yaml("sync:\n  interval: 9VALUE\n"),
        Fixture.yaml("sync:\n  jitter: VALUE\n"),
        Fixture.yaml("sync:\n  jitter: VALUE%\n"),
        Fixture.yaml("cache:\n  capacity: VALUE\n"),
        Fixture.yaml("logging:\n  level: VALUE\n"),
        Fixture.yaml("VALUE: 1\n"),
        Fixture.yaml("sync:\n  VALUE: 1\n"),
        Fixture.yaml("sync:\n  ? VALUE\n  : 1\n  ? [VALUE]\n  : 2\n"),
    ])
    func aLongValueShowsOnlyAnExcerpt(template: String) throws {
        let value = Self.randomWord(200)
        let error = Fixture.failure(template.replacingOccurrences(of: "VALUE", with: value))
        let message = try #require(error?.description)
        #expect(Self.leaks(of: value, in: message, length: Excerpt.limit + 1).isEmpty, "\(message)")
    }

    @Test func anExcerptIsCutAndEscaped() {
        let value = Self.randomWord(200)
        #expect(Excerpt.quoted(value) == "'" + value.prefix(32) + "…'")
        #expect(Excerpt.quoted("blob") == "'blob'")
        #expect(Excerpt.text(String(repeating: "x", count: 32)) == String(repeating: "x", count: 32))
        #expect(Excerpt.text("a\u{1B}[31mb\nc\td\r\u{7F}\u{202E}e\u{0085}") == "a\\u{1B}[31mb\\nc\\td\\r\\u{7F}\\u{202E}e\\u{85}")
        // A value of many combining marks counts each of them.
        #expect(Excerpt.text("e" + String(repeating: "\u{0301}", count: 100)).unicodeScalars.count == 33)
    }

    @Test func controlCharactersInAValueAreEscaped() throws {
        let error = Fixture.failure(Fixture.yaml(accounts: "accounts:\n  - {name: a, kind: \"\\e[2J\\e[31mblob\\u202E\"}\n"))
        let message = try #require(error?.description)
        #expect(!message.unicodeScalars.contains { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format }, "\(message)")
        #expect(message.contains("'\\u{1B}[2J\\u{1B}[31mblob\\u{202E}' is not a storage kind"), "\(message)")
    }

    @Test func aLongCredentialNameIsNotEchoedWhenTheCredentialsDirectoryIsMissing() throws {
        // A key pasted where its credential's name belongs passes as a name (no '/' in it).
        let pasted = Self.randomWord(44)
        let configuration = try Fixture.parse(Fixture.yaml(vault: "vault:\n  provider: local\n  local: {master-key-credential: \(pasted)}\n"))
        let error = #expect(throws: ConfigurationError.self) { _ = try configuration.masterKeyPath(environment: [:]) }
        let message = try #require(error?.description)
        #expect(error?.code == .credentialsDirectoryMissing)
        #expect(Self.leaks(of: pasted, in: message, length: Excerpt.limit + 1).isEmpty, "\(message)")
    }
}
