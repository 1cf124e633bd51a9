import CMKCore
@testable import CMKConfiguration
import Foundation
import Testing

/// Building blocks for configuration texts and a way to catch the error they produce.
enum Fixture {
    static let file = "/etc/cmk-syncer/cmk-syncer.yaml"
    static let workingDirectory = "/srv/work"

    static let vault = """
        vault:
          provider: local
          local:
            master-key-file: /etc/cmk-syncer/master.key

        """
    static let accounts = """
        accounts:
          - name: files-1
            kind: file

        """

    /// A configuration with the given sections (defaults: the minimal vault and one account).
    static func yaml(vault: String = vault, accounts: String = accounts, _ extra: String = "") -> String {
        vault + accounts + extra
    }

    static func parse(_ yaml: String, environment: [String: String] = [:], file: String = file) throws(ConfigurationError) -> SyncerConfiguration {
        try SyncerConfiguration.parse(yaml: yaml, file: file, environment: environment, workingDirectory: workingDirectory)
    }

    /// The error `yaml` produces; records an issue if it parses.
    static func failure(_ yaml: String, environment: [String: String] = [:], file: String = file,
                        sourceLocation: SourceLocation = #_sourceLocation) -> ConfigurationError? {
        do {
            let configuration = try parse(yaml, environment: environment, file: file)
            Issue.record("expected an error, parsed \(configuration)", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    /// Expects `yaml` to fail at `keyPath` with exactly `reason` (and `code` when given).
    static func expectFailure(_ yaml: String, at keyPath: String, _ reason: String, code: ConfigurationError.Code? = nil,
                              environment: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation) {
        guard let error = failure(yaml, environment: environment, sourceLocation: sourceLocation) else { return }
        #expect(error.keyPath == keyPath, sourceLocation: sourceLocation)
        #expect(error.reason == reason, sourceLocation: sourceLocation)
        #expect(error.description == "\(file): \(keyPath): \(reason)", sourceLocation: sourceLocation)
        if let code { #expect(error.code == code, "code \(error.code)", sourceLocation: sourceLocation) }
    }

    /// The package root (for the shipped files).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// A fresh temporary directory, removed by the caller.
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "cmk-config-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return PathSyntax.normalise(path)
    }
}
