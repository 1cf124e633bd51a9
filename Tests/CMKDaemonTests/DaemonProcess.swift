import Foundation
import Testing

/// Starts the real `cmk-syncer` binary built next to this test bundle.
final class DaemonProcess {
    let process = Process()
    let logPath: String

    static func binary(_ name: String) throws -> String {
        // Another build's binaries (to show that a new test fails on the code before its fix).
        if let override = ProcessInfo.processInfo.environment["CMK_TEST_BIN_DIRECTORY"], !override.isEmpty {
            return override + "/" + name
        }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = (exe as NSString).deletingLastPathComponent
        if directory.hasSuffix(".xctest/Contents/MacOS") { directory = ((directory as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent }
        let path = directory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw Missing(message: "\(path) is missing: run `swift build --build-tests` (it builds every executable) before the tests")
        }
        return path
    }

    struct Missing: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// - Parameter launcher: a command that runs the daemon (`setpriv …`), or none.
    init(arguments: [String], logPath: String, environment: [String: String] = [:], launcher: [String] = []) throws {
        self.logPath = logPath
        let binary = try Self.binary("cmk-syncer")
        process.executableURL = URL(fileURLWithPath: launcher.first ?? binary)
        process.arguments = launcher.isEmpty ? arguments : Array(launcher.dropFirst()) + [binary] + arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "NOTIFY_SOCKET")
        env.removeValue(forKey: "JOURNAL_STREAM")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardError = log
        process.standardOutput = log
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    func signal(_ number: Int32) { kill(pid, number) }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits for the process to exit; returns its status (or nil after the timeout).
    func wait(timeout: Duration = .seconds(30)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline { return nil }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// Polls `condition` until it holds or the timeout passes.
func eventually(_ what: String, timeout: Duration = .seconds(30), _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? condition()) == true { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    // One last look: a starved task may wake up only after the deadline.
    if (try? condition()) == true { return }
    Issue.record("timed out waiting for: \(what)")
    throw Timeout(what: what)
}

struct Timeout: Error { let what: String }

/// A temporary embedded setup: a config file, a state directory, accounts created on first run.
final class EmbeddedSetup {
    let root: String
    var configPath: String { root + "/cmk-syncer.yaml" }
    var state: String { root + "/state" }

    init(accounts: [(String, String)] = [("files-1", "file"), ("sql-1", "sql")]) throws {
        root = NSTemporaryDirectory() + "cmk-daemon-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try writeConfig(accounts: accounts)
    }

    func writeConfig(accounts: [(String, String)], extra: String = "") throws {
        let list = accounts.map { "  - {name: \($0.0), kind: \($0.1), create: true}" }.joined(separator: "\n")
        let yaml = """
            state-directory: \(state)
            vault:
              provider: local
              local: {master-key-file: \(state)/master.key, create: true}
            accounts:
            \(list)
            sync: {interval: 10m, jitter: 0%}
            \(extra)
            """
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    func report() throws -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: state + "/status.json") else { return nil }
        return try JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}
