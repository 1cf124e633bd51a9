import CMKAzureTestServer
import CMKTesting
import Foundation
import Testing

/// A `cmk-vault` process for one test: a throw-away CA, a state directory, a configuration on a
/// free loopback port, the log in a file; `cmkctl` and Python scripts run against it.
final class VaultProcess {
    let root: String
    let state: String
    let config: String
    let port: Int
    let ca: TestCertificateAuthority
    let process: Process
    /// The state directory is on a tmpfs of its own, in a private mount namespace (``start(failuresPerClient:failuresPerAddress:extra:stateTmpfsSize:environment:)``).
    let namespaced: Bool
    var url: String { "https://127.0.0.1:\(port)" }
    var log: String { (try? String(contentsOfFile: root + "/vault.log", encoding: .utf8)) ?? "" }

    static func binary(_ name: String) throws -> String { try BuiltExecutables.path(name) }

    /// Starts the service and waits until it says it is listening (30 s at most). With
    /// `stateTmpfsSize` (e.g. `"4m"`) the service runs in a private mount namespace (`unshare
    /// --mount`, root) with its state directory on a tmpfs of that size; ``inside(_:)`` and
    /// ``ctl(_:)`` reach it there. The host's mounts are never touched.
    static func start(failuresPerClient: Int = 10, failuresPerAddress: Int? = nil, extra: String = "", stateTmpfsSize: String? = nil, environment extraEnvironment: [String: String] = [:]) throws -> VaultProcess {
        let ca = try TestCertificateAuthority.make()
        let root = NSTemporaryDirectory() + "cmk-vault-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let port = try LoopbackPort.free()
        let config = root + "/cmk-vault.yaml"
        try """
            state-directory: \(root)/state
            public-url: https://127.0.0.1:\(port)
            listen: 127.0.0.1:\(port)
            tls:
              certificate-file: \(ca.server.certificatePath)
              key-file: \(ca.server.privateKeyPath)
            authentication: {failures-per-client: \(failuresPerClient),\(failuresPerAddress.map { " failures-per-address: \($0)," } ?? "") failure-window: 5m}
            logging: {format: text, level: info}
            \(extra)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        chmod(config, 0o600)
        _ = FileManager.default.createFile(atPath: root + "/vault.log", contents: nil)
        return try launch(root: root, config: config, port: port, ca: ca, stateTmpfsSize: stateTmpfsSize, environment: extraEnvironment)
    }

    /// A new cmk-vault process on this one's state, configuration, port and CA (after it ended:
    /// ``terminate()`` or a crash point's SIGKILL), with `environment` added (`CMK_CRASH_AT`, libfaketime's); its log is
    /// appended to the same file.
    /// Without `waitForListening` it returns at once (a crash point may end it before it listens).
    func restart(environment extraEnvironment: [String: String] = [:], waitForListening: Bool = true) throws -> VaultProcess {
        precondition(!process.isRunning, "stop the running cmk-vault first")
        return try Self.launch(root: root, config: config, port: port, ca: ca, stateTmpfsSize: nil, environment: extraEnvironment, wait: waitForListening)
    }

    private static func launch(root: String, config: String, port: Int, ca: TestCertificateAuthority, stateTmpfsSize: String?,
                               environment extraEnvironment: [String: String], wait: Bool = true) throws -> VaultProcess {
        let process = Process()
        if let stateTmpfsSize {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
            process.arguments = ["--mount", "--propagation", "private", "/bin/sh", "-euc",
                                 "mkdir -p \"$1\"; mount -t tmpfs -o size=\(stateTmpfsSize),mode=0700 tmpfs \"$1\"; exec \"$2\" run --config \"$3\"",
                                 "sh", root + "/state", try binary("cmk-vault"), config]
        } else if extraEnvironment["LD_PRELOAD"] != nil {
            // Spawned straight from Foundation's Process with libfaketime preloaded, the Swift
            // program sees no arguments; exec'd from a shell (same PID) it does.
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "exec \"$0\" \"$@\"", try binary("cmk-vault"), "run", "--config", config]
        } else {
            process.executableURL = URL(fileURLWithPath: try binary("cmk-vault"))
            process.arguments = ["run", "--config", config]
        }
        var environment = ProcessInfo.processInfo.environment
        for name in ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY"] { environment[name] = nil }
        environment.merge(extraEnvironment) { $1 }
        process.environment = environment
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/vault.log"))
        let starts = output.seekToEndOfFile() == 0 ? 0 : (try? String(contentsOfFile: root + "/vault.log", encoding: .utf8))?.components(separatedBy: "The vault service is listening.").count ?? 1
        process.standardOutput = output
        process.standardError = process.standardOutput
        try process.run()
        let vault = VaultProcess(root: root, config: config, port: port, ca: ca, process: process, namespaced: stateTmpfsSize != nil)
        let listening = { vault.log.components(separatedBy: "The vault service is listening.").count > max(starts, 1) }
        guard wait else { return vault }
        let deadline = Date().addingTimeInterval(30)
        while !listening(), process.isRunning, Date() < deadline { usleep(50_000) }
        guard listening() else {
            let log = vault.log  // before stop() removes it
            vault.stop()
            throw VaultTestError("cmk-vault did not start listening (running: \(process.isRunning)); log:\n\(log)")
        }
        return vault
    }

    private init(root: String, config: String, port: Int, ca: TestCertificateAuthority, process: Process, namespaced: Bool = false) {
        self.namespaced = namespaced
        self.root = root
        state = root + "/state"
        self.config = config
        self.port = port
        self.ca = ca
        self.process = process
    }

    /// `cmkctl ARGS --vault-state STATE`, which must exit 0; its JSON output.
    func ctl(_ arguments: [String]) throws -> [String: Any] {
        let run = try inside([try Self.binary("cmkctl")] + arguments + ["--vault-state", state])
        guard run.status == 0 else { throw VaultTestError("cmkctl \(arguments.joined(separator: " ")): exit \(run.status): \(run.errors)") }
        guard let object = try? JSONSerialization.jsonObject(with: run.output) as? [String: Any] else {
            throw VaultTestError("cmkctl \(arguments.joined(separator: " ")) printed no JSON object: \(String(decoding: run.output, as: UTF8.self))")
        }
        return object
    }

    /// Runs `command` in the service's mount namespace when it has one (`nsenter --mount`), else directly.
    func inside(_ command: [String]) throws -> ProcessRunner.Result {
        guard namespaced else { return try ProcessRunner.run(command[0], Array(command.dropFirst())) }
        return try ProcessRunner.run("/usr/bin/nsenter", ["--mount", "--target", String(process.processIdentifier), "--"] + command)
    }

    /// Runs `Scripts/NAME` with python3 and the service's address; its JSON output. A missing
    /// package is a failure naming scripts/install-deps.sh, never a skip.
    func python(_ name: String, _ environment: [String: String]) throws -> [String: Any] {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts/" + name).path
        var merged = ProcessInfo.processInfo.environment
        merged["VAULT_URL"] = url
        merged["VAULT_CA_FILE"] = ca.caCertificatePath
        merged["VAULT_TENANT"] = try tenantID()
        merged["VAULT_OPENAPI"] = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/openapi/cmk-vault.yaml").standardized.path
        for (key, value) in environment { merged[key] = value }
        let run = try ProcessRunner.run("/usr/bin/env", ["python3", script], environment: merged)
        let result = (try? JSONSerialization.jsonObject(with: run.output)) as? [String: Any] ?? [:]
        if run.status == 3 { throw VaultTestError("python3 lacks \(result["missing"] ?? "a package"): run scripts/install-deps.sh (azure-identity, PyJWT, cryptography)") }
        guard run.status == 0 else {
            throw VaultTestError("\(name) failed (exit \(run.status)): \(run.errors.suffix(3000))\nservice log:\n\(log.suffix(3000))")
        }
        return result
    }

    /// The tenant id, from the listening line.
    func tenantID() throws -> String {
        guard let range = log.range(of: "cmk_tenant=") else { throw VaultTestError("no tenant in the log:\n\(log)") }
        return String(log[range.upperBound...].prefix(36))
    }

    /// SIGTERM; the exit status, or nil if still running after 15 s.
    func terminate() -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(15)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        ca.remove()
        try? FileManager.default.removeItem(atPath: root)
    }

}

struct VaultTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
