import Foundation
import Testing

/// The real `cmk-syncer` under limits a host imposes (issue 24): a stderr that cannot be written
/// (RLIMIT_FSIZE, a full filesystem) drops log lines instead of killing the daemon (defect 11);
/// a too small address-space limit is refused at once with a message instead of a silent hang
/// (defect 17); `check-config` and the daemon bound the vault request timeout by the watchdog
/// interval (defect 3).
@Suite("Host limits", .serialized)
struct HostLimitsTests {
    /// A scratch directory with a valid local-vault configuration (state in `state/`).
    static func scratch(_ prefix: String, configuration: ((String) -> String)? = nil) throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory(prefix: prefix)
        let state = directory.path + "/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try directory.write((configuration ?? { DaemonHarness.validConfiguration(state: $0) })(state), to: "cmk-syncer.yaml", mode: 0o600)
        return (directory, directory.path + "/cmk-syncer.yaml")
    }

    /// Single-quoted for sh.
    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    @Test("stderr at the file size limit (prlimit --fsize, log file already full): run --once drops the lines, exits 0 and writes its report", arguments: ["text", "json"])
    func stderrOverFileSizeLimit(_ format: String) throws {
        let binary = try TestPaths.cmkSyncer()
        let prlimit = try TestPaths.tool("/usr/bin/prlimit", package: "util-linux")
        let (directory, config) = try Self.scratch("fsize")
        let log = directory.path + "/daemon.log"
        // The limit applies to every file: 1 MiB leaves room for the state files, the log is full.
        try directory.write(String(repeating: "x", count: 1 << 20), to: "daemon.log")
        let command = "exec \(prlimit) --fsize=\(1 << 20) \(Self.quoted(binary)) run --once --config \(Self.quoted(config)) --log-format \(format) 2>>\(Self.quoted(log))"
        let result = try Command.run("/bin/sh", ["-c", command], environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"])
        #expect(result.status == 0, "exit status \(result.status) with stderr at RLIMIT_FSIZE (132 was SIGILL from FileHandle.write); \(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: directory.path + "/state/status.json"), "the pass's report was written")
        let size = (try? FileManager.default.attributesOfItem(atPath: log)[.size] as? Int) ?? -1
        #expect(size == 1 << 20, "the log stays at the limit: \(size) bytes")
        print("host limits: stderr at RLIMIT_FSIZE (\(format)) → exit \(result.status)")
    }

    @Test("stderr on a full filesystem (a tmpfs filled with dd, in a private mount namespace): run --once exits 0 and writes its report")
    func stderrOnFullFilesystem() throws {
        try #require(geteuid() == 0, "mounting a tmpfs in a private mount namespace needs root (the tests run as root here and in CI)")
        let binary = try TestPaths.cmkSyncer()
        let unshare = try TestPaths.tool("/usr/bin/unshare", package: "util-linux")
        let (directory, config) = try Self.scratch("fullfs")
        let logs = directory.path + "/logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let script = """
            set -e
            mount -t tmpfs -o size=256k cmk-full-log \(Self.quoted(logs))
            dd if=/dev/zero of=\(Self.quoted(logs + "/fill")) bs=4k 2>/dev/null || true
            : > \(Self.quoted(logs + "/daemon.log")) 2>/dev/null || true
            if printf x >> \(Self.quoted(logs + "/probe")) 2>/dev/null && test -s \(Self.quoted(logs + "/probe")); then echo "the tmpfs is not full" >&2; exit 99; fi
            exec \(Self.quoted(binary)) run --once --config \(Self.quoted(config)) --log-format text 2>>\(Self.quoted(logs + "/daemon.log"))
            """
        let result = try Command.run(unshare, ["--mount", "--propagation", "private", "/bin/sh", "-c", script],
                                     environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"])
        #expect(result.status == 0, "exit status \(result.status) with stderr on a full filesystem; \(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: directory.path + "/state/status.json"), "the pass's report was written")
        print("host limits: stderr on a full tmpfs → exit \(result.status)")
    }

    @Test("prlimit --as=128M: the daemon refuses at once (exit 1) naming RLIMIT_AS and the minimum; at the documented minimum it runs")
    func smallAddressSpace() throws {
        let binary = try TestPaths.cmkSyncer()
        let prlimit = try TestPaths.tool("/usr/bin/prlimit", package: "util-linux")
        let (directory, config) = try Self.scratch("as")
        let started = ContinuousClock.now
        let refused = try Command.run(prlimit, ["--as=\(128 << 20)", binary, "run", "--config", config, "--log-format", "text"],
                                      environment: ["PATH": "/usr/bin:/bin"], timeout: .seconds(30))
        let took = ContinuousClock.now - started
        #expect(refused.status == 1, "exit status \(refused.status); stderr: \(refused.stderr)")
        #expect(took < .seconds(10), "the refusal took \(took)")
        let processors = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        let minimum = 256 + 32 * processors
        #expect(refused.stderr.contains("cmk-syncer: cannot start: the address-space limit (RLIMIT_AS: ulimit -v, prlimit --as, LimitAS=) is 128 MiB; cmk-syncer needs at least \(minimum) MiB"),
                "the message names the limit and the minimum: \(refused.stderr)")

        let runs = try Command.run(prlimit, ["--as=\(minimum << 20)", binary, "run", "--once", "--config", config, "--log-format", "text"],
                                   environment: ["PATH": "/usr/bin:/bin"], timeout: .seconds(60))
        #expect(runs.status == 0, "at the documented minimum (\(minimum) MiB) run --once exits \(runs.status); \(runs.stderr)")
        print("host limits: RLIMIT_AS 128 MiB → exit \(refused.status) after \(took); \(minimum) MiB → exit \(runs.status)")
        withExtendedLifetime(directory) {}
    }

    /// An Azure configuration with `vault.azure.timeout` set (it is only checked, never used).
    static func azureConfiguration(timeout: String) -> (String) -> String {
        { state in
            """
            state-directory: \(state)
            vault:
              provider: azure
              azure:
                vault-url: https://contoso.vault.azure.net
                tenant-id: contoso.onmicrosoft.com
                client-id: 00000000-0000-0000-0000-000000000001
                client-secret-file: \(state)/client.secret
                timeout: \(timeout)
            accounts:
              - {name: files-1, kind: file, create: true}

            """
        }
    }

    @Test("check-config: vault.azure.timeout must be at most half of WatchdogSec (the shipped 60 s, or WATCHDOG_USEC when set)")
    func checkConfigBoundsTimeoutByWatchdog() throws {
        let binary = try TestPaths.cmkSyncer()
        let (long, tooLong) = try Self.scratch("wd-long", configuration: Self.azureConfiguration(timeout: "45s"))
        let refused = try Command.run(binary, ["check-config", "--config", tooLong], environment: ["PATH": "/usr/bin:/bin"])
        #expect(refused.status == 78, "exit \(refused.status): \(refused.stderr)")
        #expect(refused.stderr.contains("vault.azure.timeout: 45s is longer than half the systemd watchdog interval (WatchdogSec= of the shipped unit: 1m)"), "\(refused.stderr)")
        #expect(refused.stderr.contains("set vault.azure.timeout to 30s or less, or raise WatchdogSec= to at least 90s"), "\(refused.stderr)")

        let (short, fits) = try Self.scratch("wd-fits", configuration: Self.azureConfiguration(timeout: "30s"))
        let valid = try Command.run(binary, ["check-config", "--config", fits], environment: ["PATH": "/usr/bin:/bin"])
        #expect(valid.status == 0, "the default timeout fits the shipped watchdog: \(valid.stderr)")
        let shorter = try Command.run(binary, ["check-config", "--config", fits], environment: ["PATH": "/usr/bin:/bin", "WATCHDOG_USEC": "20000000"])
        #expect(shorter.status == 78 && shorter.stderr.contains("(WATCHDOG_USEC: 20s)"), "exit \(shorter.status): \(shorter.stderr)")
        withExtendedLifetime((long, short)) {}
    }

    @Test("the daemon under a watchdog shorter than twice vault.azure.timeout: exit 78, ERRNO=EINVAL naming the key, no READY")
    func daemonRefusesTimeoutOverWatchdog() throws {
        let daemon = try DaemonHarness(configuration: Self.azureConfiguration(timeout: "30s"), environment: ["WATCHDOG_USEC": "20000000"])
        let code = daemon.waitForExit(timeout: .seconds(20))
        let messages = daemon.listener.collect(for: .milliseconds(300))
        #expect(code == 78, "exit status \(String(describing: code)); log:\n\(daemon.log)")
        let message = try #require(messages.first { $0["ERRNO"] != nil }, "\(messages)")
        #expect(message["ERRNO"] == "\(EINVAL)")
        #expect(message["STATUS"]?.contains("vault.azure.timeout: 30s is longer than half the systemd watchdog interval (WATCHDOG_USEC: 20s)") == true, "\(message)")
        #expect(!messages.contains { $0["READY"] != nil })
    }
}
