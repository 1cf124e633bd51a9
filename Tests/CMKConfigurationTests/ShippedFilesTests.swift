import CMKCore
@testable import CMKConfiguration
import Foundation
import Testing

@Suite("Shipped files")
struct ShippedFilesTests {
    static func read(_ relative: String) throws -> String {
        try String(contentsOfFile: Fixture.packageRoot + "/" + relative, encoding: .utf8)
    }

    @Test func embeddedDefaultMatchesTheFile() throws {
        #expect(try Self.read("config/embedded.yaml") == SyncerConfiguration.embeddedDefaultYAML)
    }

    @Test func embeddedDefaultParses() throws {
        let configuration = try SyncerConfiguration.parse(yaml: SyncerConfiguration.embeddedDefaultYAML, file: SyncerConfiguration.embeddedFileName,
                                                          environment: ["STATE_DIRECTORY": ".cmk-demo"], workingDirectory: "/home/me/cmk-syncer")
        let state = "/home/me/cmk-syncer/.cmk-demo"
        #expect(configuration.stateDirectory == state)
        #expect(configuration.vault.key.name == KeyReference.defaultName)
        #expect(configuration.vault.local == .init(directory: state + "/vault", masterKey: .file(state + "/master.key"), create: true))
        #expect(Set(configuration.accounts.map(\.kind)) == Set(StorageKind.allCases))
        #expect(configuration.accounts.allSatisfy { $0.create && $0.location.hasPrefix(state + "/accounts/") })
        #expect(configuration.accounts.map(\.driver) == configuration.accounts.map { SyncerConfiguration.DriverKind(rawValue: $0.kind.defaultDriver) })
    }

    @Test("the postgres example parses: postgres accounts in one database, the password from a credential")
    func postgresExampleParses() throws {
        let configuration = try SyncerConfiguration.load(path: Fixture.packageRoot + "/config/cmk-syncer.postgres.example.yaml", environment: [:])
        #expect(configuration.accounts.map(\.driver) == [.postgres, .postgres, .directory])
        #expect(configuration.postgres?.password == .credential("cmk-postgres"))
        #expect(configuration.postgres?.tls == .verifyFull)
    }

    @Test func exampleParses() throws {
        let configuration = try SyncerConfiguration.load(path: Fixture.packageRoot + "/config/cmk-syncer.example.yaml", environment: [:])
        #expect(configuration.vault.local?.masterKey == .credential("vault-master-key"))
        #expect(configuration.vault.local?.create == false)
        #expect(configuration.accounts.count == 5)
        #expect(configuration.sync == .init())
        #expect(configuration.cache == .init())
        #expect(configuration.logging == .init())
        #expect(try configuration.masterKeyPath(environment: ["CREDENTIALS_DIRECTORY": "/run/credentials/cmk-syncer.service"])
                == "/run/credentials/cmk-syncer.service/vault-master-key")
    }

    /// Every key the reader accepts is documented in docs/configuration.md as `key.path`.
    @Test func everyKeyIsDocumented() throws {
        let documentation = try Self.read("docs/configuration.md")
        var paths = SyncerConfiguration.topLevelKeys
        paths += ConfigurationDecoder.vaultKeys.map { "vault.\($0)" }
        paths += ConfigurationDecoder.localKeys.map { "vault.local.\($0)" }
        paths += ConfigurationDecoder.azureKeys.map { "vault.azure.\($0)" }
        paths += ConfigurationDecoder.rateLimitKeys.map { "vault.azure.rate-limit.\($0)" }
        paths += ConfigurationDecoder.accountKeys.map { "accounts[].\($0)" }
        paths += ConfigurationDecoder.syncKeys.map { "sync.\($0)" }
        paths += ConfigurationDecoder.retryKeys.map { "sync.retry.\($0)" }
        paths += ConfigurationDecoder.cacheKeys.map { "cache.\($0)" }
        paths += ConfigurationDecoder.loggingKeys.map { "logging.\($0)" }
        paths += ConfigurationDecoder.eventKeys.map { "events.\($0)" }
        paths += ConfigurationDecoder.metricsKeys.map { "metrics.\($0)" }
        for path in paths {
            #expect(documentation.contains("`\(path)`"), "docs/configuration.md does not document `\(path)`")
        }
    }
}
