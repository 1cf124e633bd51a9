import Dispatch
import Foundation

/// Runs a command to completion and collects what it printed (for tests that run tools and scripts).
public enum ProcessRunner {
    public struct Result: Sendable {
        public var status: Int32
        public var output: Data
        public var errors: String
    }

    /// stderr as read by the background reader. `@unchecked Sendable` is safe: `data` is written
    /// once by the reader before it signals `done`, and read only after `done.wait()`.
    private final class ErrorBuffer: @unchecked Sendable {
        var data = Data()
        let done = DispatchSemaphore(value: 0)
    }

    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // stderr is drained on another thread so that neither pipe can fill up and stall the child.
        let buffer = ErrorBuffer()
        let handle = errors.fileHandleForReading
        DispatchQueue.global().async {
            buffer.data = handle.readDataToEndOfFile()
            buffer.done.signal()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        buffer.done.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: data, errors: String(decoding: buffer.data, as: UTF8.self))
    }
}
