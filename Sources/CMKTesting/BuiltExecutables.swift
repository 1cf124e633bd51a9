import Foundation

/// Where the executables built with the tests are (`swift build --build-tests` builds every
/// product into the directory that holds the test bundle), for tests that run the real programs.
/// `CMK_TEST_BIN_DIRECTORY` points a suite at another build's binaries, to show that a new test
/// fails on the code before its fix.
public enum BuiltExecutables {
    /// The products directory.
    public static let directory: String = {
        if let override = ProcessInfo.processInfo.environment["CMK_TEST_BIN_DIRECTORY"], !override.isEmpty { return override }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = (exe as NSString).deletingLastPathComponent
        // Some runners execute from inside `<name>.xctest/...`: climb to the products directory.
        while directory.contains(".xctest") { directory = (directory as NSString).deletingLastPathComponent }
        return directory
    }()

    /// A built executable is missing.
    public struct Missing: Error, CustomStringConvertible {
        public let path: String
        public var description: String { "\(path) is missing: build it first (swift build --build-tests builds every executable)" }
    }

    /// The path of executable `name`; throws ``Missing`` when it was not built.
    public static func path(_ name: String) throws -> String {
        let path = directory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else { throw Missing(path: path) }
        return path
    }
}
