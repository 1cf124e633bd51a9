import CMKAzureTestServer
import CMKConfiguration
import CMKVaultService
import Foundation
import Testing

/// The smallest valid configuration.
private let minimalYAML = """
    public-url: https://vault.example.com:8443
    tls: {certificate-credential: tls.crt, key-credential: tls.key}
    """

/// A configuration with one mistake, the key path the error must name and a phrase it must hold.
struct MistakeCase: Sendable, CustomTestStringConvertible {
    let yaml: String
    let key: String
    let phrase: String
    init(_ yaml: String, _ key: String, _ phrase: String) {
        self.yaml = yaml
        self.key = key
        self.phrase = phrase
    }
    var testDescription: String { "\(key): \(phrase)" }
}

private let mistakeCases: [MistakeCase] = [
    MistakeCase("\(minimalYAML)\nlisten: 8443", "listen", "accepted: systemd"),
    MistakeCase("\(minimalYAML)\nlisten: localhost:70000", "listen", "1 to 65535"),
    MistakeCase("\(minimalYAML)\nlimts: {}", "limts", "did you mean 'limits'"),
    MistakeCase("\(minimalYAML)\nlimits: {max-body-bytes: 10}", "limits.max-body-bytes", "accepted: 1024 to 1048576"),
    MistakeCase("\(minimalYAML)\nlimits: {key-operations-per-10s: -1}", "limits.key-operations-per-10s", "accepted: 0 to 1000000"),
    MistakeCase("\(minimalYAML)\nauthentication: {failure-window: 1s}", "authentication.failure-window", "10s to 24h"),
    MistakeCase("public-url: http://vault.example.com\ntls: {certificate-file: a, key-file: b}", "public-url", "https"),
    MistakeCase("public-url: https://vault.example.com/path\ntls: {certificate-file: a, key-file: b}", "public-url", "no path"),
    MistakeCase("public-url: https://v.example\ntls: {certificate-file: a}", "tls", "key-file"),
    MistakeCase("public-url: https://v.example\ntls: {certificate-file: a, certificate-credential: b, key-file: c}", "tls.certificate-credential", "both set"),
    MistakeCase("public-url: https://v.example\ntls: {certificate-file: a, key-file: c, password: x}", "tls.password", "secrets are never read"),
    MistakeCase("public-url: https://v.example\ntls: {certificate-file: a, key-file: c, minimum-version: '1.1'}", "tls.minimum-version", "accepted: 1.2, 1.3"),
    MistakeCase("tls: {certificate-file: a, key-file: c}", "public-url", "is required"),
    MistakeCase("\(minimalYAML)\nvault: {retention-days: 30}", "vault", "master-key-file"),
    MistakeCase("\(minimalYAML)\nvault: {master-key-file: k, master-key-credential: m}", "vault.master-key-credential", "both set"),
    MistakeCase("\(minimalYAML)\nvault: {master-key-file: k, retention-days: 5}", "vault.retention-days", "accepted: 7 to 90"),
    MistakeCase("\(minimalYAML)\nvault: {master-key-credential: m, create-master-key: true}", "vault.create-master-key", "cannot create"),
    MistakeCase("\(minimalYAML)\nvault: {master-key-file: k, master-key: abc}", "vault.master-key", "secrets are never read"),
]

/// `cmk-vault`'s configuration is read as strictly as the daemon's: every mistake names the key
/// path and what is accepted.
@Suite("cmk-vault configuration")
struct VaultServiceConfigurationTests {
    func parse(_ yaml: String, environment: [String: String] = [:]) throws(ConfigurationError) -> VaultServiceConfiguration {
        try VaultServiceConfiguration.parse(yaml: yaml, file: "/etc/cmk-vault/cmk-vault.yaml", environment: environment)
    }

    @Test("the minimal file: systemd socket, defaults for limits, throttle and logging; $STATE_DIRECTORY as the state")
    func minimal() throws {
        let configuration = try parse(minimalYAML, environment: ["STATE_DIRECTORY": "/var/lib/cmk-vault"])
        #expect(configuration.listen == .systemd)
        #expect(configuration.publicURL == "https://vault.example.com:8443")
        #expect(configuration.tls.certificate == .credential("tls.crt") && configuration.tls.key == .credential("tls.key"))
        #expect(configuration.tls.minimumVersion == "1.2")
        #expect(configuration.limits.maxBodyBytes == 65_536 && configuration.limits.maxPageSize == 1_000)
        #expect(configuration.limits.keyOperationsPer10s == 2_000, "Azure's 2,000 per 10 s for RSA 2,048-bit HSM keys")
        #expect(configuration.authentication.failuresPerClient == 10 && configuration.authentication.failureWindow == .seconds(300))
        #expect(configuration.stateDirectory == "/var/lib/cmk-vault")
    }

    @Test("vault: the master key's source relative to the state directory, the retention and purge protection; no section, no keys API")
    func vault() throws {
        #expect(try parse(minimalYAML).vault == nil)
        let configuration = try parse(minimalYAML + "\nstate-directory: /srv/vault\nvault: {master-key-file: master.key, retention-days: 7, purge-protection: false}")
        let vault = try #require(configuration.vault)
        #expect(vault.masterKey == .file("/srv/vault/master.key"))
        #expect(vault.retentionDays == 7 && !vault.purgeProtection && !vault.createMasterKey)
        #expect(try parse(minimalYAML + "\nvault: {master-key-credential: master.key}").vault?.masterKey == .credential("master.key"))
    }

    @Test("listen: IPv4 and bracketed IPv6 addresses")
    func addresses() throws {
        #expect(try parse(minimalYAML + "\nlisten: 127.0.0.1:8443").listen == .address(host: "127.0.0.1", port: 8443))
        #expect(try parse(minimalYAML + "\nlisten: '[::1]:9443'").listen == .address(host: "::1", port: 9443))
    }

    @Test("mistakes name the key and what is accepted", arguments: mistakeCases)
    func mistakes(_ mistake: MistakeCase) {
        do {
            _ = try parse(mistake.yaml)
            Issue.record("accepted: \(mistake.yaml)")
        } catch {
            #expect(error.keyPath == mistake.key, "\(error)")
            #expect("\(error)".contains(mistake.phrase), "\(error)")
        }
    }
    @Test("cmk-vault check-config: 0 for a valid file, 78 naming the key for an unknown one")
    func checkConfig() throws {
        let root = NSTemporaryDirectory() + "cmk-vault-cfg-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let binary = try VaultProcess.binary("cmk-vault")
        try minimalYAML.write(toFile: root + "/good.yaml", atomically: true, encoding: .utf8)
        try (minimalYAML + "\nlisten-address: 1.2.3.4:1").write(toFile: root + "/bad.yaml", atomically: true, encoding: .utf8)
        for file in ["good.yaml", "bad.yaml"] { chmod(root + "/" + file, 0o600) }
        let good = try ProcessRunner.run(binary, ["check-config", "--config", root + "/good.yaml"])
        #expect(good.status == 0, "\(good.errors)")
        let bad = try ProcessRunner.run(binary, ["check-config", "--config", root + "/bad.yaml"])
        #expect(bad.status == 78)
        #expect(bad.errors.contains("listen-address") && bad.errors.contains("unknown key"), "\(bad.errors)")
    }
}

@Suite("cmk-vault shipped files")
struct VaultShippedFilesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test("config/cmk-vault.example.yaml is valid and spells out the defaults")
    func example() throws {
        let text = try String(contentsOfFile: Self.root + "/config/cmk-vault.example.yaml", encoding: .utf8)
        let configuration = try VaultServiceConfiguration.parse(yaml: text, file: "/etc/cmk-vault/cmk-vault.yaml", environment: [:])
        #expect(configuration.listen == .systemd)
        #expect(configuration.limits == VaultServiceConfiguration.Limits())
        #expect(configuration.authentication == VaultServiceConfiguration.Authentication())
    }

    @Test("the catalog has one entry per MESSAGE_ID the service logs")
    func catalog() throws {
        let text = try String(contentsOfFile: Self.root + "/systemd/cmk-vault.catalog", encoding: .utf8)
        let ids = VaultMessageID.all
        let source = try String(contentsOfFile: Self.root + "/Sources/CMKVaultService/VaultServer.swift", encoding: .utf8)
        #expect(source.components(separatedBy: "public static let ").count - 2 == ids.count, "VaultMessageID.all must list every id")
        for id in ids { #expect(text.contains("-- \(id)\n"), "no catalog entry for \(id)") }
        #expect(text.components(separatedBy: "\n-- ").count - 1 == ids.count)
    }
}

@Suite("cmk-vault OpenAPI document")
struct VaultOpenAPITests {
    @Test("docs/openapi/cmk-vault.yaml is a valid OpenAPI 3.1 document (openapi-spec-validator)")
    func valid() throws {
        let path = VaultShippedFilesTests.root + "/docs/openapi/cmk-vault.yaml"
        let run = try ProcessRunner.run("/usr/bin/env", ["python3", "-c", """
            import sys, yaml
            from openapi_spec_validator import validate
            document = yaml.safe_load(open(sys.argv[1]))
            assert document["openapi"].startswith("3.1"), document["openapi"]
            validate(document)
            print(len(document["paths"]))
            """, path])
        #expect(run.status == 0, "openapi-spec-validator: \(run.errors) (scripts/install-deps.sh installs it)")
        #expect(Int(String(decoding: run.output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 >= 8)
    }
}
