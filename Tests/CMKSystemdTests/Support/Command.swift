import Foundation

/// The result of a finished command.
struct CommandResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Errors of the test harness itself (not of the code under test).
struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs external commands with output captured in files (no pipe deadlocks) and a hard timeout.
enum Command {
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                    timeout: Duration = .seconds(60)) throws -> CommandResult {
        let scratch = try TemporaryDirectory(prefix: "cmd")
        let process = try start(executable, arguments, environment: environment,
                                stdout: scratch.path + "/stdout", stderr: scratch.path + "/stderr")
        guard wait(process, timeout: timeout) else {
            process.terminate()
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw HarnessError("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout)")
        }
        return CommandResult(status: process.terminationStatus,
                             stdout: (try? String(contentsOfFile: scratch.path + "/stdout", encoding: .utf8)) ?? "",
                             stderr: (try? String(contentsOfFile: scratch.path + "/stderr", encoding: .utf8)) ?? "")
    }

    /// Starts a process with stdout and stderr written to the given files.
    static func start(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                      stdout: String, stderr: String) throws -> Process {
        _ = FileManager.default.createFile(atPath: stdout, contents: nil)
        _ = FileManager.default.createFile(atPath: stderr, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: stdout)
        process.standardError = FileHandle(forWritingAtPath: stderr)
        try process.run()
        return process
    }

    /// Waits for the process to exit; false on timeout.
    static func wait(_ process: Process, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { return false }
            usleep(20_000)
        }
        return true
    }
}

/// A directory under /tmp removed when the value is released.
final class TemporaryDirectory {
    let path: String

    init(prefix: String) throws {
        var template = Array("/tmp/cmk-\(prefix).XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp failed: errno \(errno)") }
        path = String(cString: made)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ text: String, to name: String, mode: Int = 0o644) throws {
        let file = path + "/" + name
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: file, atomically: false, encoding: .utf8)
        chmod(file, mode_t(mode))
    }
}
