import CMKCore
import CMKTesting
import Foundation
import Testing

/// The real `cmkctl` and `cmk-syncer` on a token: `cmkctl keys create`, a `cmk-syncer run --once`
/// pass binding three accounts (directory and SQLite storage), `cmkctl keys rotate` making a new
/// version on the token, and a second pass rebinding every account with DEKs wrapped by the
/// configured algorithm under the new version.
enum TokenProcessStory {
    struct Token {
        let module: String
        let label: String
        let pinFile: String
        let wrapAlgorithm: WrapAlgorithm
        let environment: [String: String]
    }

    static func run(_ token: Token) throws {
        let root = NSTemporaryDirectory() + "cmk-pkcs11-process-" + UUID().uuidString.prefix(8)
        let state = root + "/state"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let config = root + "/cmk-syncer.yaml"
        try """
            state-directory: \(state)
            vault:
              provider: pkcs11
              key: root-on-token
              pkcs11:
                module: \(token.module)
                token-label: \(token.label)
                pin-file: \(token.pinFile)
                sessions: 2
                wrap-algorithm: \(token.wrapAlgorithm.rawValue)
            \(TestConfigurationYAML.threeAccounts(state: state))
            """.write(toFile: config, atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["CMK_SYNCER_CONFIG"] = nil
        for (name, value) in token.environment { environment[name] = value }

        func run(_ tool: String, _ arguments: [String]) throws -> String {
            let (status, text) = try LoggedProcess.run(try BuiltExecutables.path(tool), arguments + ["--config", config],
                                                       environment: environment, log: root + "/\(tool).out")
            #expect(status == 0, "\(tool) \(arguments.joined(separator: " ")) exited \(status): \(text)")
            return text
        }
        func versions() throws -> [[String: Any]] {
            let list = try run("cmkctl", ["keys", "list", "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [String: Any], "keys list --json: \(list)")
            return try #require(object["versions"] as? [[String: Any]], "no versions in \(list)")
        }
        func report() throws -> [[String: Any]] {
            let data = try Data(contentsOf: URL(fileURLWithPath: state + "/status.json"))
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            return try #require(object["accounts"] as? [[String: Any]])
        }

        _ = try run("cmkctl", ["keys", "create"])
        let first = try #require(try versions().first?["version"] as? String)
        _ = try run("cmk-syncer", ["run", "--once"])
        #expect(try report().map { $0["binding"] as? String } == [first, first, first])
        _ = try run("cmkctl", ["keys", "rotate"])
        let ids = try versions().compactMap { $0["version"] as? String }
        #expect(ids.count == 2 && ids.first == first, "versions after the rotation: \(ids)")
        let second = try #require(ids.last)
        _ = try run("cmk-syncer", ["run", "--once"])
        let accounts = try report()
        #expect(accounts.map { $0["binding"] as? String } == [second, second, second], "\(accounts)")
        #expect(accounts.map { $0["previousBinding"] as? String } == [first, first, first], "\(accounts)")
        let keyring = try Data(contentsOf: URL(fileURLWithPath: state + "/accounts/files-1/keyring.json"))
        let deks = try #require((try JSONSerialization.jsonObject(with: keyring) as? [String: Any])?["deks"] as? [[String: Any]])
        #expect(!deks.isEmpty && deks.allSatisfy { $0["algorithm"] as? String == token.wrapAlgorithm.rawValue && $0["keyVersion"] as? String == second },
                "keyring DEKs: \(deks.map { ($0["algorithm"] ?? "-", $0["keyVersion"] ?? "-") })")
    }
}

@Suite("PKCS#11 provider: cmkctl and cmk-syncer processes on a token", .serialized)
struct PKCS11ProcessTests {
    @Test("SoftHSM: cmkctl keys create/rotate on the token, cmk-syncer run --once rebinds every account with A256KWP")
    func softHSM() throws {
        let token = try SoftHSMToken.make()
        defer { token.remove() }
        try TokenProcessStory.run(.init(module: token.modulePath, label: token.label, pinFile: token.pinFile, wrapAlgorithm: .aesKeyWrapPad,
                                        environment: ["SOFTHSM2_CONF": token.configFile]))
    }

    @Test("openCryptoki: cmkctl keys create/rotate on the token, cmk-syncer run --once rebinds every account with RSA-OAEP-256")
    func openCryptoki() throws {
        guard OpenCryptoki.inside else { return try OpenCryptoki.runSelf("PKCS11ProcessTests/openCryptoki") }
        try TokenProcessStory.run(.init(module: OpenCryptoki.module, label: OpenCryptoki.label, pinFile: OpenCryptoki.pinFile,
                                        wrapAlgorithm: .rsaOAEP256, environment: [:]))
    }
}
