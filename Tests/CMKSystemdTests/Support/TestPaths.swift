import Foundation

/// Where the things under test are: the real `cmk-syncer` binary next to the test bundle, the
/// unit file and catalog in `systemd/`, the helper scripts beside this file.
enum TestPaths {
    /// The package root (three levels above this file).
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let unitFile = packageRoot + "/systemd/cmk-syncer.service"
    static let catalog = packageRoot + "/systemd/cmk-syncer.catalog"
    static let scripts = packageRoot + "/Tests/CMKSystemdTests/Scripts"

    /// The `cmk-syncer` executable built with the tests (`$CMK_SYNCER_BINARY` overrides). Never
    /// skips: a missing binary is a failure with instructions.
    static func cmkSyncer() throws -> String {
        if let override = ProcessInfo.processInfo.environment["CMK_SYNCER_BINARY"] { return override }
        var candidates: [String] = []
        var roots: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { roots.append(exe) }
        roots += CommandLine.arguments.filter { $0.contains(".xctest") }
        for root in roots {
            var url = URL(fileURLWithPath: root)
            // …/debug/cmk-syncerPackageTests.xctest (Linux) or …/debug/X.xctest/Contents/MacOS/X (macOS)
            for _ in 0..<4 {
                url.deleteLastPathComponent()
                candidates.append(url.path + "/cmk-syncer")
            }
        }
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        throw HarnessError("""
            The cmk-syncer executable is missing (looked at \(candidates.joined(separator: ", "))). \
            Build it with the tests: `swift build --build-tests` (it builds every product), or set CMK_SYNCER_BINARY.
            """)
    }

    /// Fails with a clear message when a system tool the test needs is missing.
    static func tool(_ path: String, package: String) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw HarnessError("\(path) is missing: install the Debian package '\(package)'")
        }
        return path
    }
}
