import CMKDaemon
import Foundation
import Testing

/// Native journal logging against a real systemd-journald (in private namespaces), and the
/// message catalog compiled and applied by the real journalctl.
@Suite("journal and catalog")
struct JournalTests {
    /// One journal entry from `journalctl -o json`.
    typealias Entry = [String: String]

    @Test("Entries carry MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, CODE_*, CMK_* fields and catalogued MESSAGE_IDs")
    func journalEntries() throws {
        let binary = try TestPaths.cmkSyncer()
        _ = try TestPaths.tool("/lib/systemd/systemd-journald", package: "systemd")
        _ = try TestPaths.tool("/usr/bin/unshare", package: "util-linux")
        let work = try TemporaryDirectory(prefix: "journal")
        let state = work.path + "/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        chmod(state, 0o700)
        try work.write(DaemonHarness.validConfiguration(state: state), to: "good.yaml")
        try work.write("""
            state-directory: \(state)
            vault:
              provider: local
              key: no-such-key
              local: {master-key-file: \(state)/master.key, create: false}
            accounts:
              - {name: files-1, kind: file, create: true}
              - {name: sql-1, kind: sql, create: true}
            sync: {interval: 1m}

            """, to: "missing-key.yaml")
        try work.write(DaemonHarness.validConfiguration(state: state).replacingOccurrences(of: "sync: {interval: 1m}", with: "sync: {intervall: 5m}"),
                       to: "bad.yaml")

        let result = try Command.run("/bin/bash", [TestPaths.scripts + "/journal-sandbox.sh", work.path, binary, TestPaths.catalog],
                                     timeout: .seconds(90))
        #expect(result.status == 0, "journal sandbox failed: \(result.stdout)\(result.stderr)")
        let status = { (name: String) in (try? String(contentsOfFile: work.path + "/run-\(name).status", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(status("good") == "0", "a clean first pass exits 0: \((try? String(contentsOfFile: work.path + "/run-good.out", encoding: .utf8)) ?? "")")
        #expect(status("missing-key") != "0", "a missing key is not success")
        #expect(status("bad") == "78", "an invalid configuration exits 78")

        let json = try String(contentsOfFile: work.path + "/entries.json", encoding: .utf8)
        let entries: [Entry] = json.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return object.compactMapValues { $0 as? String }
        }
        #expect(!entries.isEmpty, "no entries for SYSLOG_IDENTIFIER=cmk-syncer; journald log: \((try? String(contentsOfFile: work.path + "/journald.log", encoding: .utf8)) ?? "")")

        // Every entry: the fields the handler always sends, and a valid priority.
        for entry in entries {
            #expect(entry["SYSLOG_IDENTIFIER"] == "cmk-syncer")
            #expect(!(entry["MESSAGE"] ?? "").isEmpty)
            #expect(entry["PRIORITY"].flatMap(Int.init).map { (0...7).contains($0) } == true, "PRIORITY: \(entry)")
            #expect(entry["CODE_FILE"]?.isEmpty == false && entry["CODE_LINE"].flatMap(Int.init) != nil && entry["CODE_FUNC"] != nil,
                    "CODE_FILE/CODE_LINE/CODE_FUNC: \(entry)")
            #expect(entry["_PID"] != nil, "trusted fields from journald: \(entry)")
        }

        let started = entries.first { $0["MESSAGE"] == "cmk-syncer started." }
        #expect(started?["PRIORITY"] == "6" && started?["CMK_KEY_NAME"]?.isEmpty == false, "start entry: \(String(describing: started))")

        let passes = entries.filter { $0["MESSAGE"] == "Sync pass finished." }
        #expect(passes.count == 2, "one pass per run: \(passes.count)")
        let goodPass = try #require(passes.first)
        #expect(goodPass["CMK_OUTCOME"] == "ok" && goodPass["IN_SYNC"] == "2/2", "\(goodPass)")
        let syncID = try #require(goodPass["CMK_SYNC_ID"], "CMK_SYNC_ID on the pass entry")
        #expect(!(goodPass["CMK_KEY_VERSION"] ?? "").isEmpty)

        let created = entries.filter { $0["MESSAGE"] == "Account keyring created." }
        #expect(Set(created.compactMap { $0["CMK_ACCOUNT"] }) == ["files-1", "sql-1"], "one entry per account: \(created)")
        #expect(Set(created.compactMap { $0["CMK_ACCOUNT_KIND"] }) == ["file", "sql"])
        #expect(created.allSatisfy { $0["CMK_SYNC_ID"] == syncID && $0["CMK_KEY_VERSION"] == goodPass["CMK_KEY_VERSION"] && $0["CMK_EVENT"] == "account-created" && $0["CMK_OUTCOME"]?.isEmpty == false },
                "account entries belong to the pass: \(created)")

        let missing = try #require(entries.first { $0["MESSAGE_ID"] == MessageID.keyMissing }, "no keyMissing MESSAGE_ID entry")
        #expect(missing["CMK_KEY_NAME"] == "no-such-key" && missing["PRIORITY"] == "2" && missing["CMK_SYNC_ID"] != nil, "\(missing)")

        let invalid = try #require(entries.first { $0["MESSAGE_ID"] == MessageID.configurationInvalid },
                                   "no configurationInvalid entry when stderr is the journal")
        #expect(invalid["CMK_CONFIG_KEY"]?.hasPrefix("sync.") == true, "\(invalid)")

        // journalctl -x explains catalogued entries with our catalog text, fields substituted.
        let explained = try String(contentsOfFile: work.path + "/explained.txt", encoding: .utf8)
        #expect(explained.contains("Subject: Root key no-such-key is missing from the vault"), "journalctl -x:\n\(explained)")
        #expect(explained.contains("Defined-By: cmk-syncer"))
        #expect(explained.contains("Subject: The cmk-syncer configuration is invalid"))
        #expect(!explained.contains("@CMK_KEY_NAME@"), "unsubstituted field in -x output")
        print("journal: \(entries.count) entries from journald; pass \(syncID) with CMK_* fields; MESSAGE_IDs \(Set(entries.compactMap { $0["MESSAGE_ID"] }).sorted()); journalctl -x explains them")
        try? FileManager.default.copyItem(atPath: work.path + "/explained.txt", toPath: "/tmp/cmk-syncer-journal-x.txt")
    }

    @Test("The catalog compiles and has an entry with the required headers for every MESSAGE_ID")
    func catalog() throws {
        _ = try TestPaths.tool("/usr/bin/journalctl", package: "systemd")
        let root = try TemporaryDirectory(prefix: "catalog")
        try FileManager.default.createDirectory(atPath: root.path + "/usr/lib/systemd/catalog", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root.path + "/var/lib/systemd/catalog", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TestPaths.catalog, toPath: root.path + "/usr/lib/systemd/catalog/cmk-syncer.catalog")
        let update = try Command.run("/usr/bin/journalctl", ["--root=\(root.path)", "--update-catalog"])
        #expect(update.status == 0 && update.stderr.isEmpty, "update-catalog: \(update.stderr)")
        let dump = try Command.run("/usr/bin/journalctl", ["--root=\(root.path)", "--dump-catalog"])
        #expect(dump.status == 0)
        let sections = dump.stdout.components(separatedBy: "-- ").dropFirst()
        var seen: [String] = []
        for id in MessageID.all {
            let section = try #require(sections.first { $0.hasPrefix(id) }, "no catalog entry for MESSAGE_ID \(id)")
            for header in ["Subject: ", "Defined-By: cmk-syncer", "Documentation: ", "Support: "] {
                #expect(section.contains("\n" + header), "\(id) lacks \(header)")
            }
            #expect(section.contains("@CMK_"), "\(id): the body should name the entry's fields")
            seen.append(id)
        }
        #expect(Set(MessageID.all).count == MessageID.all.count, "duplicate ids in MessageID.all")
        print("catalog: journalctl --update-catalog OK; --dump-catalog has \(seen.count)/\(MessageID.all.count) ids with Subject/Defined-By/Documentation/Support")
    }
}
