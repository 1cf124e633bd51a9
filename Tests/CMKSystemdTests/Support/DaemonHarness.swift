import CMKTesting
import Foundation

/// A temporary state directory, a configuration file and a running `cmk-syncer` whose
/// `$NOTIFY_SOCKET` is a ``NotifyListener`` owned by the test.
final class DaemonHarness {
    let directory: TemporaryDirectory
    let listener: NotifyListener
    let binary: String
    private(set) var process: Process?
    let launched: ContinuousClock.Instant

    /// A valid configuration: a local vault created on first start, two accounts, a long interval.
    static func validConfiguration(state: String, extraSync: String = "") -> String {
        """
        state-directory: \(state)
        vault:
          provider: local
          local: {master-key-file: \(state)/master.key, create: true}
        accounts:
          - {name: files-1, kind: file, create: true}
          - {name: sql-1, kind: sql, create: true}
        sync: {interval: 1m\(extraSync)}

        """
    }

    init(configuration: ((String) -> String)? = nil, environment extra: [String: String] = [:],
         arguments: [String] = ["run"]) throws {
        binary = try TestPaths.cmkSyncer()
        directory = try TemporaryDirectory(prefix: "notify")
        listener = try NotifyListener(directory: directory.path)
        let state = directory.path + "/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        chmod(state, 0o700)
        let config = (configuration ?? { Self.validConfiguration(state: $0) })(state)
        try directory.write(config, to: "cmk-syncer.yaml")
        var environment = ["PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": listener.path, "LANG": "C.UTF-8"]
        environment.merge(extra) { _, new in new }
        launched = .now
        process = try Command.start(binary, arguments + ["--config", directory.path + "/cmk-syncer.yaml", "--log-format", "text"],
                                    environment: environment,
                                    stdout: directory.path + "/stdout.log", stderr: directory.path + "/stderr.log")
    }

    deinit { stop() }

    var pid: pid_t { process?.processIdentifier ?? 0 }

    func signal(_ number: Int32) { if let process, process.isRunning { kill(process.processIdentifier, number) } }

    /// Waits for exit; returns the status, or nil on timeout.
    func waitForExit(timeout: Duration) -> Int32? {
        guard let process, Command.wait(process, timeout: timeout) else { return nil }
        return process.terminationStatus
    }

    /// SIGKILL if still running.
    func stop() {
        guard let process else { return }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// The daemon's stderr so far (its text log), for failure messages.
    var log: String { (try? String(contentsOfFile: directory.path + "/stderr.log", encoding: .utf8)) ?? "" }
}
