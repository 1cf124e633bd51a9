@testable import CMKConfiguration
import Testing

@Suite("Paths")
struct PathTests {
    @Test func stateDirectoryResolvesAgainstTheConfigurationFilesDirectory() throws {
        let configuration = try Fixture.parse(Fixture.yaml("state-directory: state\nruntime-directory: ../run\n"))
        #expect(configuration.stateDirectory == "/etc/cmk-syncer/state")
        #expect(configuration.runtimeDirectory == "/etc/run")
    }

    @Test func relativeConfigurationFileResolvesAgainstTheWorkingDirectory() throws {
        let configuration = try Fixture.parse(Fixture.yaml("state-directory: ./state/\n"), file: "conf/cmk.yaml")
        #expect(configuration.file == "/srv/work/conf/cmk.yaml")
        #expect(configuration.stateDirectory == "/srv/work/conf/state")
    }

    @Test func dataPathsResolveAgainstTheStateDirectory() throws {
        let configuration = try Fixture.parse(Fixture.yaml(
            vault: "vault:\n  provider: local\n  local:\n    directory: keys//vault/.\n    master-key-file: secrets/master.key\n",
            accounts: "accounts:\n  - name: a\n    kind: file\n    location: data/../files\n",
            "state-directory: /data\n"))
        #expect(configuration.vault.local?.directory == "/data/keys/vault")
        #expect(configuration.vault.local?.masterKey == .file("/data/secrets/master.key"))
        #expect(configuration.accounts[0].location == "/data/files")
    }

    @Test func absolutePathsStayAsWritten() throws {
        let configuration = try Fixture.parse(Fixture.yaml(accounts: "accounts:\n  - name: a\n    kind: sql\n    location: /srv/db/a.sqlite\n"))
        #expect(configuration.accounts[0].location == "/srv/db/a.sqlite")
    }

    @Test(arguments: [
        ("'~/data'", "'~/data' starts with '~': home directories are not expanded; write the path out"),
        ("'~'", "'~' starts with '~': home directories are not expanded; write the path out"),
        ("''", "is empty (expected a path)"),
        ("\"a\\0b\"", "contains a NUL character (expected a path)"),
        ("~", "expected a path, got no value"),
        ("[a, b]", "expected a path, got a list"),
    ])
    func badPathsAreRefused(value: String, reason: String) {
        Fixture.expectFailure(Fixture.yaml(accounts: "accounts:\n  - name: a\n    kind: file\n    location: \(value)\n"),
                              at: "accounts[0].location", reason)
    }

    @Test(arguments: ["state-directory", "runtime-directory"])
    func topLevelDirectoriesRefuseTilde(key: String) {
        Fixture.expectFailure(Fixture.yaml("\(key): ~/x\n"), at: key,
                              "'~/x' starts with '~': home directories are not expanded; write the path out", code: .invalidValue)
    }

    @Test(arguments: [
        ("/a/b/../c/./d/", "/a/c/d"), ("/../..", "/"), ("//x//y", "/x/y"), ("/", "/"),
    ])
    func normalisation(raw: String, expected: String) {
        #expect(PathSyntax.normalise(raw) == expected)
    }
}
