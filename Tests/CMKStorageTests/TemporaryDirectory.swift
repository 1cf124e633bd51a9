import Foundation
import Glibc

/// A private temporary directory removed when the test ends.
struct TemporaryDirectory: ~Copyable {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/cmk-storage-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Permission bits of a path (`stat(2)`), or nil if it does not exist.
func mode(_ path: String) -> mode_t? {
    var info = stat()
    guard fstatat(AT_FDCWD, path, &info, 0) == 0 else { return nil }
    return info.st_mode & 0o7777
}

/// Sets a file's modification time `seconds` into the past.
func backdate(_ path: String, by seconds: TimeInterval) throws {
    try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-seconds)], ofItemAtPath: path)
}

/// A child process that prints one line when it is ready, then holds something (a lock) until killed.
final class HelperProcess {
    let process = Process()
    private let output = Pipe()
    private let input = Pipe()

    /// Starts `python3 -c script args…` and waits until it prints its first line.
    init(python script: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw HelperFailed(message: "helper exited before it was ready") }
            line.append(chunk)
        }
    }

    /// Closes the helper's standard input: scripts that wait on `sys.stdin.read()` go on.
    func release() {
        try? input.fileHandleForWriting.close()
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    deinit { stop() }

    struct HelperFailed: Error { let message: String }
}
