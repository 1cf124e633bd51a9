import CMKCore
@testable import CMKConfiguration
import Testing

@Suite("accounts")
struct AccountsTests {
    static func accounts(_ items: String...) -> String { "accounts:\n" + items.map { "  - " + $0 + "\n" }.joined() }

    @Test func everyFieldIsRead() throws {
        let configuration = try Fixture.parse(Fixture.yaml(accounts: Self.accounts(
            "{name: a, kind: secret-store, driver: directory, location: /srv/a, create: true}",
            "{name: b-2, kind: analytics}")))
        #expect(configuration.accounts == [
            .init(name: "a", kind: .secretStore, driver: .directory, location: "/srv/a", create: true),
            .init(name: "b-2", kind: .analytics, driver: .sqlite, location: "/var/lib/cmk-syncer/accounts/b-2.sqlite", create: false),
        ])
        #expect(configuration.account(named: "b-2")?.kind == .analytics)
    }

    @Test func storageKindErrorReadsAsDocumented() {
        let error = Fixture.failure(Fixture.yaml(accounts: Self.accounts("{name: a, kind: file}", "{name: b, kind: blob}")))
        #expect(error?.description == "/etc/cmk-syncer/cmk-syncer.yaml: accounts[1].kind: 'blob' is not a storage kind (accepted: file, sql, audit, analytics, secret-store)")
        #expect(error?.code == .invalidValue)
        #expect(error?.category == .configuration)
        #expect(error?.line == 7)
    }

    @Test(arguments: [("flie", "file"), ("secret_store", "secret-store"), ("sq", "sql")])
    func misspeltKindsGetASuggestion(value: String, suggestion: String) {
        Fixture.expectFailure(Fixture.yaml(accounts: Self.accounts("{name: a, kind: \(value)}")), at: "accounts[0].kind",
                              "'\(value)' is not a storage kind, did you mean '\(suggestion)'? (accepted: file, sql, audit, analytics, secret-store)")
    }

    @Test(arguments: ["Files", "-files", "files_1", "a.b", "'a b'", "''", String(repeating: "a", count: 65)])
    func badNames(name: String) {
        // A long value shows as its first 32 characters and '…'.
        let shown = name.hasPrefix("'") ? String(name.dropFirst().dropLast()) : name
        Fixture.expectFailure(Fixture.yaml(accounts: Self.accounts("{name: \(name), kind: file}")), at: "accounts[0].name",
                              "\(Excerpt.quoted(shown)) is not a valid account name (accepted: 1-64 characters of a-z, 0-9 and '-', not starting with '-')",
                              code: .invalidValue)
    }

    @Test(arguments: ["a", "0", "files-1-", String(repeating: "z", count: 64)])
    func goodNames(name: String) throws {
        #expect(try Fixture.parse(Fixture.yaml(accounts: Self.accounts("{name: '\(name)', kind: file}"))).accounts[0].name == name)
    }

    @Test func duplicateNamesAreRefused() {
        Fixture.expectFailure(Fixture.yaml(accounts: Self.accounts("{name: a, kind: file}", "{name: b, kind: sql}", "{name: a, kind: audit}")),
                              at: "accounts[2].name", "'a' is already the name of accounts[0]: account names must be unique", code: .duplicate)
    }

    @Test func sharedLocationsAreRefused() {
        Fixture.expectFailure(Fixture.yaml(accounts: Self.accounts("{name: a, kind: file, location: /srv/x}", "{name: b, kind: audit, location: /srv/x/}")),
                              at: "accounts[1].location", "'/srv/x' is already the location of accounts[0]: each account needs its own", code: .duplicate)
    }

    @Test(arguments: ["vault/data", "vault", "/var/lib/cmk-syncer"])
    func locationsOverlappingTheVaultAreRefused(location: String) {
        let resolved = location.hasPrefix("/") ? location : "/var/lib/cmk-syncer/" + location
        Fixture.expectFailure(Fixture.yaml(accounts: Self.accounts("{name: a, kind: file, location: \(location)}")), at: "accounts[0].location",
                              "'\(resolved)' overlaps the vault directory '/var/lib/cmk-syncer/vault' (symbolic links resolved): keep account data outside the vault")
    }

    @Test(arguments: [
        ("{kind: file}", "accounts[0].name", "is required: 1-64 characters of a-z, 0-9 and '-', not starting with '-'"),
        ("{name: a}", "accounts[0].kind", "is required (accepted: file, sql, audit, analytics, secret-store)"),
        ("{name: a, kind: file, driver: postgres}", "postgres", "is required: accounts[0] has driver postgres; add a postgres section naming the server, database and user (docs/configuration.md)"),
        ("{name: a, kind: file, driver: sqlit}", "accounts[0].driver", "'sqlit' is not a storage driver, did you mean 'sqlite'? (accepted: directory, sqlite, postgres)"),
        ("{name: a, kind: file, driver: s3}", "accounts[0].driver", "'s3' is not a storage driver (accepted: directory, sqlite, postgres)"),
        ("{name: a, kind: file, create: 1}", "accounts[0].create", "expected true or false, got '1'"),
        ("{name: [a], kind: file}", "accounts[0].name", "expected an account name, got a list"),
        ("{name: a, kind: {x: 1}}", "accounts[0].kind", "expected a storage kind (accepted: file, sql, audit, analytics, secret-store), got a mapping"),
        ("files-1", "accounts[0]", "expected a mapping with the keys name, kind, driver, location, create, got 'files-1'"),
    ])
    func badAccountFields(item: String, keyPath: String, reason: String) {
        Fixture.expectFailure(Fixture.yaml(accounts: Self.accounts(item)), at: keyPath, reason)
    }

    @Test(arguments: [
        ("accounts: []\n", "is empty: configure at least one account"),
        ("accounts:\n", "expected a list of accounts (mappings with name, kind, driver, location), got no value"),
        ("accounts:\n  name: a\n", "expected a list of accounts (mappings with name, kind, driver, location), got a mapping"),
    ])
    func accountsMustBeANonEmptyList(accounts: String, reason: String) {
        Fixture.expectFailure(Fixture.yaml(accounts: accounts), at: "accounts", reason)
    }

    @Test func accountsAreRequired() {
        Fixture.expectFailure(Fixture.vault, at: "accounts", "is required: a list of at least one account with name, kind, driver and location", code: .missingKey)
    }
}
