import CMKCore
@testable import CMKConfiguration
import Testing

@Suite("Defaults and environment")
struct DefaultsTests {
    @Test func minimalFileTakesEveryDefault() throws {
        let configuration = try Fixture.parse(Fixture.yaml())
        #expect(configuration.file == Fixture.file)
        #expect(configuration.stateDirectory == "/var/lib/cmk-syncer")
        #expect(configuration.runtimeDirectory == "/run/cmk-syncer")
        #expect(configuration.vault.provider == .local)
        #expect(configuration.vault.key.name == "data-at-rest-rsa2048")
        #expect(configuration.vault.local == .init(directory: "/var/lib/cmk-syncer/vault", masterKey: .file("/etc/cmk-syncer/master.key"),
                                                   create: false, keySize: 2048, retentionDays: 90, purgeProtection: true))
        #expect(configuration.accounts == [.init(name: "files-1", kind: .file, driver: .directory, location: "/var/lib/cmk-syncer/accounts/files-1", create: false)])
        let sync = configuration.sync
        #expect(sync.interval == .seconds(900))
        #expect(sync.jitter == .fraction(0.1))
        #expect(sync.pulledPollInterval == .seconds(60))
        #expect(sync.suspend == .immediate)
        #expect(sync.concurrency == 4)
        #expect(sync.backupRetention == .seconds(14 * 86_400))
        #expect(sync.startTimeout == .seconds(30))
        #expect(sync.retry == .init(attempts: 5, initialDelay: .seconds(1), maxDelay: .seconds(16)))
        #expect(configuration.cache == .init(ttl: .seconds(3600), capacity: 10_000))
        #expect(configuration.logging == .init(level: "info", format: .auto))
    }

    @Test(arguments: [
        (StorageKind.file, SyncerConfiguration.DriverKind.directory, "/var/lib/cmk-syncer/accounts/a"),
        (.audit, .directory, "/var/lib/cmk-syncer/accounts/a"),
        (.sql, .sqlite, "/var/lib/cmk-syncer/accounts/a.sqlite"),
        (.analytics, .sqlite, "/var/lib/cmk-syncer/accounts/a.sqlite"),
        (.secretStore, .sqlite, "/var/lib/cmk-syncer/accounts/a.sqlite"),
    ])
    func driverAndLocationDefaultFromTheKind(kind: StorageKind, driver: SyncerConfiguration.DriverKind, location: String) throws {
        let configuration = try Fixture.parse(Fixture.yaml(accounts: "accounts:\n  - name: a\n    kind: \(kind.rawValue)\n"))
        #expect(configuration.accounts[0].driver == driver)
        #expect(configuration.accounts[0].location == location)
    }

    @Test func explicitDriverDecidesTheDefaultLocation() throws {
        let configuration = try Fixture.parse(Fixture.yaml(accounts: "accounts:\n  - name: a\n    kind: file\n    driver: sqlite\n"))
        #expect(configuration.accounts[0].location == "/var/lib/cmk-syncer/accounts/a.sqlite")
    }

    @Test func systemdDirectoriesAreTheDefaults() throws {
        let configuration = try Fixture.parse(Fixture.yaml(), environment: ["STATE_DIRECTORY": "/var/lib/one:/var/lib/two", "RUNTIME_DIRECTORY": "/run/x"])
        #expect(configuration.stateDirectory == "/var/lib/one")
        #expect(configuration.runtimeDirectory == "/run/x")
        #expect(configuration.vault.local?.directory == "/var/lib/one/vault")
        #expect(configuration.accounts[0].location == "/var/lib/one/accounts/files-1")
    }

    @Test func relativeStateDirectoryVariableResolvesAgainstTheWorkingDirectory() throws {
        let configuration = try Fixture.parse(Fixture.yaml(), environment: ["STATE_DIRECTORY": ".cmk-demo"])
        #expect(configuration.stateDirectory == "/srv/work/.cmk-demo")
    }

    @Test func emptyVariablesAreIgnored() throws {
        let configuration = try Fixture.parse(Fixture.yaml(), environment: ["STATE_DIRECTORY": "", "RUNTIME_DIRECTORY": ""])
        #expect(configuration.stateDirectory == "/var/lib/cmk-syncer")
        #expect(configuration.runtimeDirectory == "/run/cmk-syncer")
    }

    @Test func theFileOverridesTheVariables() throws {
        let configuration = try Fixture.parse(Fixture.yaml("state-directory: /data/state\nruntime-directory: /data/run\n"),
                                              environment: ["STATE_DIRECTORY": "/var/lib/x", "RUNTIME_DIRECTORY": "/run/x"])
        #expect(configuration.stateDirectory == "/data/state")
        #expect(configuration.runtimeDirectory == "/data/run")
    }

    @Test func variableWithTildeIsRefused() {
        Fixture.expectFailure(Fixture.yaml(), at: "state-directory",
                              "the default from $STATE_DIRECTORY '~/state' starts with '~': home directories are not expanded; write the path out",
                              code: .invalidValue, environment: ["STATE_DIRECTORY": "~/state"])
    }

    @Test func sectionsWithEveryKeyCommentedOutMeanDefaults() throws {
        let configuration = try Fixture.parse(Fixture.yaml("sync:\n  # interval: 5m\ncache:\nlogging:\n"))
        #expect(configuration.sync == .init())
        #expect(configuration.cache == .init())
        #expect(configuration.logging == .init())
    }
}
