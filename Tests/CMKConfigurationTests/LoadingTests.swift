@testable import CMKConfiguration
import Foundation
import Testing

@Suite("Loading files")
struct LoadingTests {
    @Test func missingFileSaysWhatToDo() {
        let error = #expect(throws: ConfigurationError.self) { try SyncerConfiguration.load(path: "/nonexistent/cmk-syncer.yaml", environment: [:]) }
        #expect(error?.code == .fileMissing)
        #expect(error?.keyPath == nil)
        #expect(error?.description == "/nonexistent/cmk-syncer.yaml: the configuration file does not exist: create it (config/cmk-syncer.example.yaml is a commented example) or pass --config <file>")
    }

    @Test func aDirectoryIsNotAFile() throws {
        let directory = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let error = #expect(throws: ConfigurationError.self) { try SyncerConfiguration.load(path: directory, environment: [:]) }
        #expect(error?.code == .unreadable)
        #expect(error?.reason == "is a directory, not a configuration file: pass --config <file>")
    }

    @Test func loadsFromDiskAndResolvesAgainstTheFilesDirectory() throws {
        let directory = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/cmk-syncer.yaml"
        try Fixture.yaml("state-directory: state\n").write(toFile: path, atomically: true, encoding: .utf8)
        let configuration = try SyncerConfiguration.load(path: path, environment: [:])
        #expect(configuration.file == path)
        #expect(configuration.stateDirectory == directory + "/state")
        #expect(configuration.accounts[0].location == directory + "/state/accounts/files-1")
    }

    @Test func loadingHasNoSideEffects() throws {
        let directory = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/embedded.yaml"
        try SyncerConfiguration.embeddedDefaultYAML.write(toFile: path, atomically: true, encoding: .utf8)
        let configuration = try SyncerConfiguration.load(path: path, environment: ["STATE_DIRECTORY": directory + "/state"])
        #expect(configuration.vault.local?.create == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["embedded.yaml"])
    }

    @Test func invalidUTF8IsRefused() throws {
        let directory = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/bad.yaml"
        try Data([0x76, 0x61, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: ConfigurationError.self) { try SyncerConfiguration.load(path: path, environment: [:]) }
        #expect(error?.code == .unreadable)
        #expect(error?.reason == "the configuration file is not UTF-8 text")
    }

    @Test(arguments: ["", "\n\n", "# only a comment\n", "---\n", "~\n"])
    func emptyFiles(text: String) {
        let error = Fixture.failure(text)
        #expect(error?.code == .empty)
        #expect(error?.description == "/etc/cmk-syncer/cmk-syncer.yaml: the file is empty: it needs at least the keys vault and accounts (see config/cmk-syncer.example.yaml)")
    }

    @Test(arguments: [("- a\n- b\n", "a list"), ("just text\n", "a single value"), ("42\n", "a single value")])
    func topLevelMustBeAMapping(text: String, got: String) {
        let error = Fixture.failure(text)
        #expect(error?.code == .wrongType)
        #expect(error?.description == "/etc/cmk-syncer/cmk-syncer.yaml:1:1: is not a YAML mapping (its top level is \(got)): a configuration is a mapping with the keys state-directory, runtime-directory, vault, accounts, sync, cache, logging, events, metrics, postgres")
    }

    @Test func syntaxErrorsCarryLineAndColumn() {
        let error = Fixture.failure(Fixture.vault + "accounts:\n  - name: [unclosed\n")
        #expect(error?.code == .syntax)
        #expect(error?.keyPath == nil)
        #expect(error?.line == 7)
        #expect(error?.description.hasPrefix("/etc/cmk-syncer/cmk-syncer.yaml:7:") == true)
        #expect(error?.reason.hasPrefix("invalid YAML: ") == true)
    }

    @Test func tabsIndentationIsASyntaxError() {
        let error = Fixture.failure("vault:\n\tprovider: local\n")
        #expect(error?.code == .syntax)
        #expect(error?.line == 2)
    }

    @Test func duplicateKeysAreSyntaxErrors() {
        let error = Fixture.failure(Fixture.yaml("sync:\n  interval: 5m\n  interval: 10m\n"))
        #expect(error?.code == .syntax)
        #expect(error?.reason == "a key appears twice in one mapping: each key may appear once")
        #expect(error?.line == 8 || error?.line == 9)
    }

    @Test func severalDocumentsAreRefused() {
        let error = Fixture.failure(Fixture.yaml() + "---\n" + Fixture.yaml())
        #expect(error?.code == .syntax)
        #expect(error?.reason.contains("another document") == true)
    }

    @Test func errorsAreConfigurationErrorsThatCompareByCode() {
        let a = ConfigurationError(.invalidValue, "one", keyPath: "a", file: "x")
        let b = ConfigurationError(.invalidValue, "two", keyPath: "b", file: "y")
        #expect(a == b)
        #expect(a != ConfigurationError(.unknownKey, "one", keyPath: "a", file: "x"))
        #expect(a.category == .configuration)
        #expect(a.codeName == "configuration.invalid-value")
        #expect(ConfigurationError.exitCode == 78)
    }
}
