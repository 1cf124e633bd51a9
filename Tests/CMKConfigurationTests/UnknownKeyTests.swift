@testable import CMKConfiguration
import Testing

@Suite("Unknown keys")
struct UnknownKeyTests {
    static let top = "state-directory, runtime-directory, vault, accounts, sync, cache, logging, events, metrics, postgres"
    static let vault = "provider, key, local, azure, pkcs11"
    static let local = "directory, master-key-file, master-key-credential, create, key-size, retention-days, purge-protection"
    static let account = "name, kind, driver, location, create"
    static let sync = "interval, jitter, pulled-poll-interval, probe-interval, suspend, concurrency, backup-retention, expiry-warning, start-timeout, retry, instance-name"

    @Test(arguments: [
        (Fixture.yaml("colour: blue\n"), "colour", "unknown key (accepted: \(top))"),
        (Fixture.yaml("sink: {}\n"), "sink", "unknown key, did you mean 'sync'? (accepted: \(top))"),
        (Fixture.yaml("<<: {}\n"), "<<", "unknown key (accepted: \(top))"),
        (Fixture.yaml(vault: "vault:\n  provider: local\n  region: eu\n"), "vault.region", "unknown key (accepted: \(vault))"),
        (Fixture.yaml(vault: "vault:\n  provider: local\n  keys: k\n"), "vault.keys", "unknown key, did you mean 'key'? (accepted: \(vault))"),
        (Fixture.yaml(vault: "vault:\n  provider: local\n  local:\n    master-key-path: /k\n"), "vault.local.master-key-path", "unknown key (accepted: \(local))"),
        (Fixture.yaml(vault: "vault:\n  provider: local\n  local:\n    master-key-fil: /k\n"), "vault.local.master-key-fil",
         "unknown key, did you mean 'master-key-file'? (accepted: \(local))"),
        (Fixture.yaml(vault: "vault:\n  provider: local\n  local:\n    master-key-credentials: k\n"), "vault.local.master-key-credentials",
         "unknown key, did you mean 'master-key-credential'? (accepted: \(local))"),
        (Fixture.yaml(accounts: "accounts:\n  - {name: a, kind: file}\n  - {name: b, kinds: file}\n"), "accounts[1].kinds",
         "unknown key, did you mean 'kind'? (accepted: \(account))"),
        (Fixture.yaml(accounts: "accounts:\n  - {name: a, kind: file, path: /x}\n"), "accounts[0].path", "unknown key (accepted: \(account))"),
        (Fixture.yaml("sync:\n  intervall: 5m\n"), "sync.intervall", "unknown key, did you mean 'interval'? (accepted: \(sync))"),
        (Fixture.yaml("sync:\n  retry:\n    attempt: 3\n"), "sync.retry.attempt", "unknown key, did you mean 'attempts'? (accepted: attempts, initial-delay, max-delay)"),
        (Fixture.yaml("cache:\n  size: 3\n"), "cache.size", "unknown key (accepted: ttl, capacity, read-wait)"),
        (Fixture.yaml("logging:\n  colour: true\n"), "logging.colour", "unknown key (accepted: level, format)"),
    ])
    func unknownKeysAreRefusedAtEveryLevel(yaml: String, keyPath: String, reason: String) {
        Fixture.expectFailure(yaml, at: keyPath, reason, code: .unknownKey)
    }

    @Test func nonScalarKeysAreRefused() {
        Fixture.expectFailure(Fixture.yaml("sync:\n  ? [a, b]\n  : 1\n"), at: "sync", "keys must be plain names, got a list as a key", code: .wrongType)
    }

    @Test(arguments: [("intervall", "interval", 1), ("sink", "sync", 2), ("flie", "file", 2), ("abc", "xyz", 3), ("", "ab", 2)])
    func editDistance(a: String, b: String, distance: Int) {
        #expect(Suggestion.editDistance(a, b) == distance)
    }
}
