import CMKIdentity
import Foundation
import Testing

/// A private temporary state directory, removed when the test ends.
final class StateDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/cmk.identity.tests." + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func store(now: Date = Date()) throws -> IdentityStore { try IdentityStore(stateDirectory: path, now: now) }

    func tokens(_ store: IdentityStore, issuerBase: String = "https://vault.test:8443") throws -> TokenService {
        TokenService(store: store, keys: try TokenSigningKeys(stateDirectory: path), issuerBase: issuerBase)
    }
}

/// Runs `body` and returns the ``IdentityError`` it throws (a test failure if it throws none or another).
func identityError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> IdentityError? {
    do {
        try body()
        Issue.record("expected an IdentityError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as IdentityError {
        return error
    } catch {
        Issue.record("expected an IdentityError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Runs `python3 -c script args…`; its standard output, or a thrown failure with its standard error.
func runPython(_ script: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    let output = Pipe(), errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw PythonFailed(status: process.terminationStatus, stderr: errorText) }
    return String(decoding: data, as: UTF8.self)
}

struct PythonFailed: Error, CustomStringConvertible {
    let status: Int32
    let stderr: String
    var description: String { "python3 exited with \(status): \(stderr)" }
}

let day: TimeInterval = 86400
