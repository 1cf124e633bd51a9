import Foundation
import Testing

/// Issue 24, defects 1 and 7: a full disk and a read-only file system still serve reads. Each
/// case runs the real `cmk-syncer` and `cmkctl` inside a private mount namespace (`unshare
/// --mount`, root) where a small tmpfs is mounted, filled or remounted read-only; the host's
/// mounts are never touched. Results are written outside the tmpfs for the test to read.
@Suite("cmkctl on a full or read-only disk", .serialized)
struct HostStorageCLITests {
    /// Runs `script` with `sh -eu` in a private mount namespace; `$B` is the binary folder, `$C`
    /// the `--config` option, `$S` the state directory, `$R` a results folder outside any tmpfs.
    static func inPrivateMountNamespace(_ harness: Harness, _ script: String) throws -> (Harness.Result, results: String) {
        let results = harness.root + "/results"
        try FileManager.default.createDirectory(atPath: results, withIntermediateDirectories: true)
        var environment = ProcessInfo.processInfo.environment
        environment["CMK_SYNCER_CONFIG"] = nil
        environment["B"] = Harness.binDirectory
        environment["C"] = "--config \(harness.config)"
        environment["S"] = harness.state
        environment["R"] = results
        _ = try Harness.binary("cmkctl")
        let run = try Harness.run("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-euc", script],
                                  environment: environment)
        return (run, results)
    }

    static func file(_ results: String, _ name: String) -> String {
        String(decoding: FileManager.default.contents(atPath: results + "/" + name) ?? Data(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("a full state disk after a rotation: every read is served; the rewrite is abandoned with a warning")
    func fullDiskServesReads() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let (run, results) = try Self.inPrivateMountNamespace(harness, """
            mkdir -p "$S"
            mount -t tmpfs -o size=2m,mode=0700 tmpfs "$S"
            "$B/cmk-syncer" run --once $C > "$R/once1.log" 2>&1
            head -c 200000 /dev/urandom > "$R/plain"
            for a in files-1 sql-1; do "$B/cmkctl" data put $C $a big "$R/plain" > /dev/null; done
            "$B/cmkctl" keys rotate $C > /dev/null
            "$B/cmk-syncer" run --once $C > "$R/once2.log" 2>&1
            dd if=/dev/zero of="$S/fill" bs=64k 2> /dev/null || true
            df -k "$S" > "$R/df"
            for a in files-1 sql-1; do
                rc=0; "$B/cmkctl" data get $C $a big --out "$R/$a.out" 2> "$R/$a.err" || rc=$?
                echo $rc > "$R/$a.rc"
            done
            rc=0; "$B/cmkctl" data sweep $C files-1 > "$R/sweep.out" 2>&1 || rc=$?
            echo $rc > "$R/sweep.rc"
            """)
        try #require(run.code == 0, "the namespace script failed (\(run.code)): \(run.stderr)")
        #expect(Self.file(results, "df").contains(" 100% "), "the disk was not full: \(Self.file(results, "df"))")
        let plain = try #require(FileManager.default.contents(atPath: results + "/plain"))
        for account in ["files-1", "sql-1"] {
            #expect(Self.file(results, "\(account).rc") == "0", "\(account): \(Self.file(results, "\(account).err"))")
            #expect(FileManager.default.contents(atPath: results + "/\(account).out") == plain, "\(account) read back something else")
            let warning = Self.file(results, "\(account).err")
            #expect(warning.contains("warning: re-encryption of object 'big' of account '\(account)'") && warning.contains("abandoned"), "\(warning)")
        }
        #expect(Self.file(results, "files-1.err").contains("No space left on device"))
        // A sweep cannot rewrite either: it lists the object as failed and exits 1.
        #expect(Self.file(results, "sweep.rc") == "1")
        #expect(Self.file(results, "sweep.out").contains("1 failed"), "\(Self.file(results, "sweep.out"))")
    }

    @Test("accounts on a read-only file system serve reads; writes and rebinds fail for them alone, naming it, until remounted")
    func readOnlyAccountsServeReads() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let readOnly = harness.root + "/ro"
        let yaml = try String(contentsOfFile: harness.config, encoding: .utf8).replacingOccurrences(of: "accounts:\n", with: """
            accounts:
              - {name: ro-dir, kind: file, driver: directory, location: \(readOnly)/ro-dir, create: true}
              - {name: ro-sql, kind: sql, driver: sqlite, location: \(readOnly)/ro-sql.sqlite, create: true}

            """)
        try yaml.write(toFile: harness.config, atomically: true, encoding: .utf8)
        let (run, results) = try Self.inPrivateMountNamespace(harness, """
            mkdir -p "\(readOnly)"
            mount -t tmpfs -o size=4m,mode=0700 tmpfs "\(readOnly)"
            "$B/cmk-syncer" run --once $C > "$R/once1.log" 2>&1
            head -c 5000 /dev/urandom > "$R/plain"
            for a in ro-dir ro-sql files-1; do "$B/cmkctl" data put $C $a o "$R/plain" > /dev/null; done
            "$B/cmkctl" keys rotate $C > /dev/null
            "$B/cmk-syncer" run --once $C > "$R/once2.log" 2>&1
            mount -o remount,ro "\(readOnly)"
            rc=0; "$B/cmkctl" keys rotate $C > /dev/null 2> "$R/rotate.err" || rc=$?
            echo $rc > "$R/rotate.rc"
            for a in ro-dir ro-sql; do
                rc=0; "$B/cmkctl" data get $C $a o --out "$R/$a.out" 2> "$R/$a.err" || rc=$?
                echo $rc > "$R/$a.rc"
                rc=0; "$B/cmkctl" data put $C $a p "$R/plain" > /dev/null 2> "$R/$a.put.err" || rc=$?
                echo $rc > "$R/$a.put.rc"
            done
            rc=0; "$B/cmkctl" keys list $C > /dev/null 2> "$R/keys.err" || rc=$?
            echo $rc > "$R/keys.rc"
            "$B/cmk-syncer" run $C > "$R/daemon.log" 2>&1 &
            daemon=$!
            trap 'kill $daemon 2> /dev/null || true' EXIT
            for i in $(seq 300); do [ -e "$S/daemon.json" ] && break; sleep 0.1; done
            rc=0; "$B/cmkctl" sync --wait --timeout 60 $C > "$R/sync1.out" 2>&1 || rc=$?
            echo $rc > "$R/sync1.rc"
            "$B/cmkctl" status --json $C > "$R/status.json" || true
            mount -o remount,rw "\(readOnly)"
            rc=0; "$B/cmkctl" sync --wait --timeout 60 $C > "$R/sync2.out" 2>&1 || rc=$?
            echo $rc > "$R/sync2.rc"
            """)
        try #require(run.code == 0, "the namespace script failed (\(run.code)): \(run.stderr)")
        let plain = try #require(FileManager.default.contents(atPath: results + "/plain"))
        for account in ["ro-dir", "ro-sql"] {
            #expect(Self.file(results, "\(account).rc") == "0", "get \(account): \(Self.file(results, "\(account).err"))")
            #expect(FileManager.default.contents(atPath: results + "/\(account).out") == plain)
            #expect(Self.file(results, "\(account).err").contains("read-only file system"), "\(Self.file(results, "\(account).err"))")
            #expect(Self.file(results, "\(account).put.rc") == "1")
            let refusal = Self.file(results, "\(account).put.err")
            #expect(refusal.contains("read-only file system") && refusal.contains("reads work"), "\(refusal)")
        }
        #expect(Self.file(results, "keys.rc") == "0", "keys list: \(Self.file(results, "keys.err"))")
        #expect(Self.file(results, "rotate.rc") == "0", "keys rotate: \(Self.file(results, "rotate.err"))")

        // The daemon's pass rebinds every other account; the read-only ones fail alone, saying why.
        #expect(Self.file(results, "sync1.rc") == "3", "\(Self.file(results, "sync1.out"))")
        let status = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: results + "/status.json"))) as? [String: Any])
        let report = try #require(status["report"] as? [String: Any], "\(status)")
        let current = try #require(report["currentVersion"] as? String)
        for account in try #require(report["accounts"] as? [[String: Any]]) {
            let name = account["name"] as? String ?? "?"
            let outcome = account["outcome"] as? [String: Any] ?? [:]
            if name.hasPrefix("ro-") {
                #expect(outcome["code"] as? String == "failed", "\(name): \(outcome)")
                #expect("\(outcome)".contains("read-only file system"), "\(name): \(outcome)")
            } else {
                #expect(account["binding"] as? String == current, "\(name): \(account)")
            }
        }
        // Remounted read-write, the same daemon rebinds them at the next pass: no restart.
        #expect(Self.file(results, "sync2.rc") == "0", "\(Self.file(results, "sync2.out"))")
    }
}
