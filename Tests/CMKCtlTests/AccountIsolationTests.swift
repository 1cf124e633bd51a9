import Foundation
import Testing

/// Issue 14: one bad account never takes down the rest, and status never lies about it. Every
/// case damages real files of a real embedded setup and runs the real `cmk-syncer` and `cmkctl`.
@Suite("one bad account", .serialized)
struct AccountIsolationTests {
    /// A set-up embedded default with one object in each account and one pass behind it.
    static func prepared() throws -> Harness {
        let harness = try Harness()
        let first = try harness.once()
        try #require(first.code == 0, "\(first.stderr)")
        for account in harness.accounts {
            let put = try harness.ctl(["data", "put", account, "note.txt"], stdin: Data("kept in \(account)".utf8))
            try #require(put.code == 0, "\(put.stderr)")
        }
        return harness
    }

    func report(_ harness: Harness) throws -> [String: Any] {
        let status = try harness.ctl(["status", "--json"])
        return try #require(try status.object()["report"] as? [String: Any], "\(status.text)")
    }

    func outcome(_ report: [String: Any], _ account: String) -> [String: Any]? {
        let accounts = report["accounts"] as? [[String: Any]] ?? []
        return accounts.first { $0["name"] as? String == account }?["outcome"] as? [String: Any]
    }

    /// Rewrites a directory account's `keyring.json` through `edit` (the file keeps its mode).
    func editKeyring(_ harness: Harness, _ account: String, _ edit: (inout [String: Any]) throws -> Void) throws {
        let path = harness.state + "/accounts/\(account)/keyring.json"
        var keyring = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        try edit(&keyring)
        try JSONSerialization.data(withJSONObject: keyring).write(to: URL(fileURLWithPath: path))
    }

    /// The healthy accounts still read and write, and every key operation works.
    func othersWork(_ harness: Harness, broken: String) throws {
        for account in harness.accounts where account != broken {
            let get = try harness.ctl(["data", "get", account, "note.txt"])
            #expect(get.code == 0, "data get \(account): \(get.stderr)")
            #expect(get.text == "kept in \(account)")
            #expect(try harness.ctl(["data", "put", account, "more.txt"], stdin: Data("x".utf8)).code == 0)
        }
        let keys = try harness.ctl(["keys", "list"])
        #expect(keys.code == 0, "keys list: \(keys.stderr)")
        let list = try harness.ctl(["accounts", "list"])
        #expect(list.code == 0, "accounts list: \(list.stderr)")
        #expect(list.stderr.contains(broken), "accounts list names the broken account: \(list.stderr)")
        let pull = try harness.ctl(["keys", "pull"])
        #expect(pull.code == 0, "keys pull: \(pull.stderr)")
        let pulled = try harness.once()
        #expect(pulled.code == 4, "a pass after the pull: \(pulled.stderr)")
        let restore = try harness.ctl(["keys", "restore"])
        #expect(restore.code == 0, "keys restore: \(restore.stderr)")
    }

    @Test("a database of random bytes fails its account alone, named, and the daemon runs")
    func corruptDatabase() throws {
        let harness = try Self.prepared()
        defer { harness.cleanUp() }
        let database = harness.state + "/accounts/sql-1.sqlite"
        unlink(database + "-wal")
        unlink(database + "-shm")
        var random = [UInt8](repeating: 0, count: 8192)
        for index in random.indices { random[index] = UInt8.random(in: 0...255) }
        try Data(random).write(to: URL(fileURLWithPath: database))
        chmod(database, 0o600)

        let pass = try harness.once()
        #expect(pass.code == 3, "a pass with one corrupt account is degraded, not a failed start: \(pass.stderr)")
        let report = try report(harness)
        #expect(report["state"] as? String == "degraded")
        #expect((report["cause"] as? String)?.contains("sql-1") == true, "\(report["cause"] ?? "")")
        #expect(outcome(report, "sql-1")?["reason"] as? String == "storage.corrupt")
        #expect(outcome(report, "files-1")?["code"] as? String == "in-sync")
        let text = try harness.ctl(["status"])
        #expect(text.text.contains("DEGRADED"), "\(text.text)")
        try othersWork(harness, broken: "sql-1")
    }

    @Test("an account directory at mode 0755 fails its account alone, named, with the chmod that fixes it")
    func unsafeDirectory() throws {
        let harness = try Self.prepared()
        defer { harness.cleanUp() }
        chmod(harness.state + "/accounts/files-1", 0o755)
        let pass = try harness.once()
        #expect(pass.code == 3, "\(pass.stderr)")
        let report = try report(harness)
        #expect(outcome(report, "files-1")?["reason"] as? String == "storage.permissions")
        #expect((outcome(report, "files-1")?["detail"] as? String)?.contains("chmod 700") == true)
        #expect(outcome(report, "audit-1")?["code"] as? String == "in-sync")
        try othersWork(harness, broken: "files-1")
        // Repaired, it opens again.
        chmod(harness.state + "/accounts/files-1", 0o700)
        #expect(try harness.once().code == 0)
    }

    @Test("a vanished keyring of an account with objects is critical and never replaced")
    func keyringRemoved() throws {
        let harness = try Self.prepared()
        defer { harness.cleanUp() }
        let keyring = harness.state + "/accounts/files-1/keyring.json"
        #expect(unlink(keyring) == 0)
        let pass = try harness.once()
        #expect(pass.code == 1, "a missing keyring is critical: \(pass.stderr)")
        #expect(!FileManager.default.fileExists(atPath: keyring), "no new keyring is made")
        #expect(!pass.stderr.contains("Account keyring created"))
        #expect(pass.stderr.contains("The account's keyring is missing; no new keyring is made."), "\(pass.stderr)")
        #expect(pass.stderr.contains("3657c74862ed44cfae815ce083a7f643"), "the catalogued MESSAGE_ID: \(pass.stderr)")
        let report = try report(harness)
        #expect(report["state"] as? String == "critical")
        #expect((report["cause"] as? String)?.contains("keyring of files-1 is missing") == true, "\(report["cause"] ?? "")")
        #expect(outcome(report, "files-1")?["reason"] as? String == "storage.keyring-missing")
        let get = try harness.ctl(["data", "get", "files-1", "note.txt"])
        #expect(get.code != 0)
        #expect(get.stderr.contains("storage.keyring-missing"), "\(get.stderr)")
        let show = try harness.ctl(["accounts", "show", "files-1"])
        #expect(show.text.contains("MISSING"), "\(show.text)")
        // Again: still critical, still no keyring.
        #expect(try harness.once().code == 1)
        #expect(!FileManager.default.fileExists(atPath: keyring))
    }

    @Test("accounts show on an unparsable keyring says it is unreadable, not 'none yet'")
    func unparsableKeyringShown() throws {
        let harness = try Self.prepared()
        defer { harness.cleanUp() }
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: harness.state + "/accounts/files-1/keyring.json"))
        let show = try harness.ctl(["accounts", "show", "files-1"])
        #expect(show.text.contains("keyring:    unreadable (see error)"), "\(show.text)")
        #expect(!show.text.contains("none yet"))
        #expect(show.text.contains("storage.corrupt"), "\(show.text)")
        let list = try harness.ctl(["accounts", "list"])
        #expect(!list.text.contains("no keyring yet"), "\(list.text)")
    }

    @Test("a truncated database is not given a fresh keyring: the last pass saw one")
    func databaseTruncated() throws {
        let harness = try Self.prepared()
        defer { harness.cleanUp() }
        let database = harness.state + "/accounts/sql-1.sqlite"
        unlink(database + "-wal")
        unlink(database + "-shm")
        #expect(truncate(database, 0) == 0)
        let pass = try harness.once()
        #expect(pass.code == 1, "\(pass.stderr)")
        let report = try report(harness)
        #expect(outcome(report, "sql-1")?["reason"] as? String == "storage.keyring-missing")
        #expect(report["state"] as? String == "critical")
        #expect(try harness.ctl(["accounts", "show", "sql-1", "--json"]).object()["hasKeyring"] as? Bool == false)
    }

    @Test("a keyring generation of 2^64-1 is refused as corrupt; the pass rotates every other account")
    func generationOverflow() throws {
        let harness = try Self.prepared()
        defer { harness.cleanUp() }
        try editKeyring(harness, "audit-1") { $0["generation"] = UInt64.max }
        #expect(try harness.ctl(["keys", "rotate"]).code == 0)
        let pass = try harness.once()
        #expect(pass.code == 3, "exit \(pass.code) (132 was the overflow trap): \(pass.stderr)")
        let report = try report(harness)
        #expect(outcome(report, "audit-1")?["reason"] as? String == "storage.corrupt")
        #expect((outcome(report, "audit-1")?["detail"] as? String)?.contains("generation 18446744073709551615") == true)
        #expect(outcome(report, "files-1")?["code"] as? String == "rebound")
    }

    @Test("a keyring bound to another key is not in sync, and says which key")
    func otherKey() throws {
        let harness = try Self.prepared()
        defer { harness.cleanUp() }
        let path = harness.state + "/accounts/files-1/keyring.json"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("\"test-root-key\""))
        try text.replacingOccurrences(of: "\"test-root-key\"", with: "\"other-key\"").write(toFile: path, atomically: false, encoding: .utf8)
        let pass = try harness.once()
        #expect(pass.code == 3, "\(pass.stderr)")
        let report = try report(harness)
        #expect(report["state"] as? String == "degraded")
        #expect(outcome(report, "files-1")?["reason"] as? String == "storage.misconfigured")
        #expect((outcome(report, "files-1")?["detail"] as? String)?.contains("bound to key 'other-key'") == true)
    }

    @Test("a keyring naming a version the key never had is critical, not 'disabled'")
    func unknownVersion() throws {
        let harness = try Self.prepared()
        defer { harness.cleanUp() }
        try editKeyring(harness, "files-1") { keyring in
            var deks = try #require(keyring["deks"] as? [[String: Any]])
            for index in deks.indices { deks[index]["keyVersion"] = "0123456789abcdef0123456789abcdef" }
            keyring["deks"] = deks
        }
        let pass = try harness.once()
        #expect(pass.code == 1, "\(pass.stderr)")
        let report = try report(harness)
        #expect(report["state"] as? String == "critical")
        #expect(outcome(report, "files-1")?["reason"] as? String == "version-unknown")
        #expect((report["cause"] as? String)?.contains("disabled") == false)
        // A reader is told the keyring is wrong (exit 1), not that the key was pulled (exit 4).
        let get = try harness.ctl(["data", "get", "files-1", "note.txt"])
        #expect(get.code == 1, "\(get.stderr)")
        #expect(get.stderr.contains("0123456789abcdef0123456789abcdef"), "\(get.stderr)")
    }

    @Test("under umask 000 every directory the daemon creates for accounts is 0700")
    func umaskIgnored() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let shell = "umask 000 && exec \"$0\" run --once --config \"$1\""
        let pass = try Harness.run("/bin/sh", ["-c", shell, try Harness.binary("cmk-syncer"), harness.config])
        #expect(pass.code == 0, "\(pass.stderr)")
        for directory in ["/accounts", "/accounts/files-1", "/accounts/files-1/objects", "/accounts/audit-1"] {
            var info = stat()
            #expect(stat(harness.state + directory, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o700, "\(directory) has mode \(String(info.st_mode & 0o777, radix: 8))")
        }
    }

    @Test("an account location that is a symbolic link into the vault is refused by check-config and by run")
    func symlinkIntoVault() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        #expect(try harness.once().code == 0)
        let link = harness.state + "/accounts/evil"
        #expect(symlink("../vault", link) == 0)
        let evil = harness.root + "/evil.yaml"
        try String(contentsOfFile: harness.config, encoding: .utf8)
            .replacingOccurrences(of: "\nsync:", with: "\n  - {name: evil, kind: file, driver: directory, location: \(link), create: true}\nsync:")
            .write(toFile: evil, atomically: true, encoding: .utf8)
        let check = try Harness.run(try Harness.binary("cmk-syncer"), ["check-config", "--config", evil])
        #expect(check.code == 78, "\(check.text) \(check.stderr)")
        #expect(check.stderr.contains("overlaps the vault directory"), "\(check.stderr)")
        let run = try Harness.run(try Harness.binary("cmk-syncer"), ["run", "--once", "--config", evil])
        #expect(run.code == 78, "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: harness.state + "/vault/keyring.json"))
        #expect(!FileManager.default.fileExists(atPath: harness.state + "/vault/objects"))
    }
}
