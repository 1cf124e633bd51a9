import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a `cmk-crashtest` child ended.
struct ChildResult {
    var reason: Process.TerminationReason
    var status: Int32
    var stdout: String
    var stderr: String

    var succeeded: Bool { reason == .exit && status == 0 }
    var killed: Bool { reason == .uncaughtSignal && status == SIGKILL }
    var description: String {
        "\(reason == .exit ? "exit" : "signal") \(status); stdout: \(stdout) stderr: \(stderr)"
    }
}

/// Errors of the harness itself (not of the code under test).
struct HarnessError: Error, CustomStringConvertible {
    var description: String
}

/// Runs the `cmk-crashtest` binary built next to this test bundle.
enum ChildProcess {
    /// The built binary. Looked for next to the test bundle and the test runner, or at
    /// `$CMK_CRASHTEST_BINARY`; fails (never skips) when it is missing.
    static let binary: Result<URL, HarnessError> = {
        var directories: [URL] = []
        if let explicit = ProcessInfo.processInfo.environment["CMK_CRASHTEST_BINARY"] {
            let url = URL(fileURLWithPath: explicit)
            if FileManager.default.isExecutableFile(atPath: url.path) { return .success(url) }
        }
        directories.append(URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent())
        directories.append(Bundle.main.bundleURL)
        if let executable = Bundle.main.executableURL { directories.append(executable.deletingLastPathComponent()) }
        directories.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        directories += Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent() }
        for directory in directories {
            // Linux: the runner sits in .build/<triple>/debug; macOS: inside the .xctest bundle.
            for candidate in [directory, directory.deletingLastPathComponent(),
                              directory.deletingLastPathComponent().deletingLastPathComponent()] {
                let url = candidate.appending(path: "cmk-crashtest")
                if FileManager.default.isExecutableFile(atPath: url.path) { return .success(url) }
            }
        }
        return .failure(HarnessError(description:
            "the cmk-crashtest binary is not next to the test bundle (looked in \(directories.map(\.path))); run `swift build --build-tests` first, or set CMK_CRASHTEST_BINARY"))
    }()

    /// Runs one child to the end; with `killAfter`, SIGKILLs it after that delay if still running.
    static func run(_ arguments: [String], environment extra: [String: String] = [:],
                    killAfter: Duration? = nil) async throws -> ChildResult {
        let process = Process()
        process.executableURL = try binary.get()
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["CMK_CRASH_AT"] = nil
        environment["CMK_CRASH_TRACE"] = nil
        environment.merge(extra) { $1 }
        process.environment = environment
        let output = FileManager.default.temporaryDirectory.appending(path: "cmk-crash-out-\(UUID().uuidString)")
        let errors = output.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: output)
            try? FileManager.default.removeItem(at: errors)
        }
        let outHandle = try FileHandle(forWritingTo: output)
        let errHandle = try FileHandle(forWritingTo: errors)
        process.standardOutput = outHandle
        process.standardError = errHandle
        let (ended, continuation) = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in continuation.finish() }
        try process.run()
        try? outHandle.close()
        try? errHandle.close()
        if let killAfter {
            try await Task.sleep(for: killAfter)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        for await _ in ended {}
        return ChildResult(reason: process.terminationReason, status: process.terminationStatus,
                           stdout: (try? String(contentsOf: output, encoding: .utf8)) ?? "",
                           stderr: (try? String(contentsOf: errors, encoding: .utf8)) ?? "")
    }

    /// `cp -a`: copies a state directory, keeping the modes the vault and drivers insist on.
    static func copy(_ source: String, to destination: String) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/cp")
        process.arguments = ["-a", source, destination]
        let (ended, continuation) = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in continuation.finish() }
        try process.run()
        for await _ in ended {}
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw HarnessError(description: "cp -a \(source) \(destination) failed")
        }
    }
}
