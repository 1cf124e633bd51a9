import CMKTesting
import Foundation
import Testing

/// Runs the real `cmkctl` and `cmk-syncer` binaries against a throw-away embedded setup.
struct Harness {
    /// The build products directory (`CMK_TEST_BIN_DIRECTORY` runs the suite against another
    /// build's binaries, to show that a new test fails on the code before its fix).
    static var binDirectory: String { BuiltExecutables.directory }

    static func binary(_ name: String) throws -> String {
        let path = binDirectory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            Issue.record("\(path) is missing: build it first (swift build --build-tests builds cmkctl and cmk-syncer)")
            throw HarnessError.missingBinary(path)
        }
        return path
    }

    enum HarnessError: Error { case missingBinary(String), timeout(String) }

    struct Result {
        var code: Int32
        var stdout: Data
        var stderr: String
        var text: String { String(decoding: stdout, as: UTF8.self) }

        func json() throws -> Any { try JSONSerialization.jsonObject(with: stdout) }
        func object() throws -> [String: Any] { try #require(try json() as? [String: Any], "not a JSON object: \(text)") }
    }

    let root: String
    let config: String
    let state: String
    let accounts = ["files-1", "sql-1", "audit-1"]

    init() throws {
        root = NSTemporaryDirectory() + "cmkctl-test-" + UUID().uuidString
        state = root + "/state"
        config = root + "/cmk-syncer.yaml"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let yaml = """
            state-directory: \(state)
            vault:
              provider: local
              key: test-root-key
              local:
                directory: \(state)/vault
                master-key-file: \(root)/master.key
                create: true
                retention-days: 7
            \(TestConfigurationYAML.threeAccounts(state: state))
            """
        try yaml.write(toFile: config, atomically: true, encoding: .utf8)
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: root) }

    /// Runs `cmkctl --config <config> ARGS`.
    func ctl(_ arguments: [String], stdin: Data? = nil, config: String? = nil) throws -> Result {
        try Self.run(try Self.binary("cmkctl"), arguments + ["--config", config ?? self.config], stdin: stdin)
    }

    /// Runs `cmk-syncer run --once`.
    func once() throws -> Result {
        try Self.run(try Self.binary("cmk-syncer"), ["run", "--once", "--config", config])
    }

    static func run(_ path: String, _ arguments: [String], stdin: Data? = nil, environment: [String: String]? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["CMK_SYNCER_CONFIG"] = nil
        process.environment = environment ?? env
        let scratch = NSTemporaryDirectory() + "cmkctl-out-" + UUID().uuidString
        _ = FileManager.default.createFile(atPath: scratch + ".out", contents: nil)
        _ = FileManager.default.createFile(atPath: scratch + ".err", contents: nil)
        defer { unlink(scratch + ".out"); unlink(scratch + ".err"); unlink(scratch + ".in") }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + ".out"))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + ".err"))
        if let stdin {
            _ = FileManager.default.createFile(atPath: scratch + ".in", contents: stdin)
            process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: scratch + ".in"))
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        process.waitUntilExit()
        let out = FileManager.default.contents(atPath: scratch + ".out") ?? Data()
        let err = String(decoding: FileManager.default.contents(atPath: scratch + ".err") ?? Data(), as: UTF8.self)
        return Result(code: process.terminationStatus, stdout: out, stderr: err)
    }
}
