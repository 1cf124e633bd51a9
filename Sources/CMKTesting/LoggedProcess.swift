import Foundation

/// Runs a program to its end with its standard output and error in a log file (not a pipe: a
/// program that fills a pipe nobody reads would block), standard input empty, and returns its exit
/// status and everything it wrote. For tests and cmk-bench that run tools (cmkctl, cmk-syncer,
/// softhsm2-util, unshare).
public enum LoggedProcess {
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           in directory: String? = nil, log: String? = nil) throws -> (status: Int32, output: String) {
        let path = log ?? NSTemporaryDirectory() + "cmk-process-\(UUID().uuidString.prefix(8)).log"
        FileManager.default.createFile(atPath: path, contents: nil)
        defer { if log == nil { unlink(path) } }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try? handle.close()
        return (process.terminationStatus, (try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
    }
}

/// The `openssl` command line, for tests that make throw-away CAs and certificates at run time
/// (no key material is committed).
public enum TestOpenSSL {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs `/usr/bin/openssl` in `directory`; throws with its output when it fails.
    public static func run(_ arguments: [String], in directory: String) throws {
        let (status, output) = try LoggedProcess.run("/usr/bin/openssl", arguments, in: directory)
        guard status == 0 else {
            throw Failure(description: "openssl \(arguments.joined(separator: " ")) exited \(status): \(output)")
        }
    }
}
