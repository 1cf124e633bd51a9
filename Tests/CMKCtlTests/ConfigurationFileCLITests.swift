import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The real `cmk-syncer` and `cmkctl` binaries, given a file that must not be used as the
/// configuration: a master key (its content must not reach stdout, stderr or the journal), a
/// world-writable file, a symbolic link. Each is exit 78 (`EX_CONFIG`).
@Suite("Configuration file safety, end to end")
struct ConfigurationFileCLITests {
    /// A private directory with a master key file (base64 of 32 random bytes, 0600).
    struct Scratch {
        let root: String
        let key: String
        var keyFile: String { root + "/master.key" }

        init() throws {
            root = NSTemporaryDirectory() + "cmk-config-cli-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try #require(chmod(root, 0o700) == 0)
            key = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            try (key + "\n").write(toFile: root + "/master.key", atomically: false, encoding: .utf8)
            try #require(chmod(root + "/master.key", 0o600) == 0)
        }

        func cleanUp() { try? FileManager.default.removeItem(atPath: root) }
    }

    /// Every 5-character piece of `secret` found in `text`.
    static func leaks(of secret: String, in text: String) -> [String] {
        let characters = Array(secret)
        return (0...(characters.count - 5)).map { String(characters[$0..<($0 + 5)]) }.filter { text.contains($0) }
    }

    static func runs(config: String) throws -> [(String, Harness.Result)] {
        var environment = ProcessInfo.processInfo.environment
        environment["CMK_SYNCER_CONFIG"] = nil
        environment["NOTIFY_SOCKET"] = nil
        return [
            ("cmk-syncer check-config", try Harness.run(try Harness.binary("cmk-syncer"), ["check-config", "--config", config], environment: environment)),
            ("cmk-syncer run --once", try Harness.run(try Harness.binary("cmk-syncer"), ["run", "--once", "--log-format", "text", "--config", config], environment: environment)),
            ("cmkctl status", try Harness.run(try Harness.binary("cmkctl"), ["status", "--config", config], environment: environment)),
        ]
    }

    @Test func aMasterKeyGivenAsTheConfigurationIsExit78AndNeverEchoed() throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        for (command, result) in try Self.runs(config: scratch.keyFile) {
            let output = result.text + result.stderr
            #expect(result.code == 78, "\(command): exit \(result.code)\n\(output)")
            #expect(Self.leaks(of: scratch.key, in: output).isEmpty, "\(command) echoed the key:\n\(output)")
            #expect(output.contains("\(scratch.keyFile):1:1: is not a YAML mapping"), "\(command):\n\(output)")
        }
    }

    @Test func aWorldWritableConfigurationIsExit78WithTheChmodThatFixesIt() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        try #require(chmod(harness.config, 0o666) == 0)
        for (command, result) in try Self.runs(config: harness.config) {
            #expect(result.code == 78, "\(command): exit \(result.code)\n\(result.stderr)")
            #expect(result.stderr.contains("\(harness.config): has mode 0666, which lets group or others write it"), "\(command):\n\(result.stderr)")
            #expect(result.stderr.contains("fix it with: chmod go-w '\(harness.config)'"), "\(command):\n\(result.stderr)")
        }
        // Nothing was created from the refused file.
        #expect(!FileManager.default.fileExists(atPath: harness.state))
    }

    @Test func aSymlinkedConfigurationIsExit78() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        let link = harness.root + "/link.yaml"
        try #require(symlink(harness.config, link) == 0)
        for (command, result) in try Self.runs(config: link) {
            #expect(result.code == 78, "\(command): exit \(result.code)\n\(result.stderr)")
            #expect(result.stderr.contains("\(link): is a symbolic link"), "\(command):\n\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: harness.state))
    }
}
