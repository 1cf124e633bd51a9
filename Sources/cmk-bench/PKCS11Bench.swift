import ArgumentParser
import CMKCore
import CMKEnvelope
import CMKPKCS11
import CMKTesting
import Foundation

/// The PKCS#11 provider's unwraps on the two emulators (issue 18): SoftHSM 2.6.1 with A256KWP and
/// openCryptoki 3.8.1's soft token with RSA-OAEP-256 (its pkcsslotd in a private namespace,
/// ``OpenCryptokiNamespace``), each at concurrency 1 and 16 through one provider (the session pool
/// at its default 4 idle sessions), beside `openssl speed rsa2048` and the local vault's unwraps in
/// the same run. Each token is measured by a `cmk-bench pkcs11-token` child process that prints JSON.
enum PKCS11Bench {
    static func run(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        let seconds = plan.mode == "quick" ? 2.0 : 5.0
        let anchor = try OpenSSLAnchor.rsa2048(seconds: plan.opensslSeconds)
        let local = try await localUnwraps(scratch: scratch, seconds: seconds)
        results.add(Figure(suite: "pkcs11", name: "local vault unwraps (RSA-OAEP-256, 2048)", value: local, unit: "op/s",
                           anchor: anchor.privatePerSecond, anchorName: "openssl rsa2048 private ops", target: nil, detail: [:]))

        let self_ = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        // SoftHSM: a token of its own in the scratch directory.
        let softhsm = scratch + "/softhsm"
        try FileManager.default.createDirectory(atPath: softhsm + "/tokens", withIntermediateDirectories: true)
        try "directories.tokendir = \(softhsm)/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
            .write(toFile: softhsm + "/softhsm2.conf", atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: softhsm + "/token.pin", contents: Data("4711-bench\n".utf8), attributes: [.posixPermissions: 0o600])
        try runTool("/usr/bin/softhsm2-util", ["--init-token", "--free", "--label", "cmk-bench", "--pin", "4711-bench", "--so-pin", "so-4711-bench"],
                    environment: ["SOFTHSM2_CONF": softhsm + "/softhsm2.conf"])
        let soft = try runTool(self_, ["pkcs11-token", "--module", "/usr/lib/softhsm/libsofthsm2.so", "--label", "cmk-bench",
                                       "--pin-file", softhsm + "/token.pin", "--algorithm", "A256KWP", "--seconds", "\(seconds)"],
                               environment: ["SOFTHSM2_CONF": softhsm + "/softhsm2.conf"])
        // openCryptoki: the same child inside a namespace with its own pkcsslotd.
        let (status, output) = try OpenCryptokiNamespace.runInNamespace(
            [self_, "pkcs11-token", "--module", OpenCryptokiNamespace.module, "--label", OpenCryptokiNamespace.label,
             "--pin-file", "-", "--algorithm", "RSA-OAEP-256", "--seconds", "\(seconds)"])
        guard status == 0 else { throw OpenSSLAnchor.Failure(description: "pkcs11-token on openCryptoki exited \(status):\n\(output)") }
        for (emulator, text) in [("SoftHSM 2.6.1, A256KWP", soft), ("openCryptoki 3.8.1 soft token, RSA-OAEP-256 2048", output)] {
            guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
                  let figures = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double] else {
                throw OpenSSLAnchor.Failure(description: "pkcs11-token on \(emulator) printed no JSON:\n\(text)")
            }
            let one = figures["unwraps/s c1"] ?? 0, sixteen = figures["unwraps/s c16"] ?? 0
            results.add(Figure(suite: "pkcs11", name: "\(emulator): unwraps, concurrency 1", value: one, unit: "op/s",
                               anchor: anchor.privatePerSecond, anchorName: "openssl rsa2048 private ops", target: nil,
                               detail: ["local vault op/s": local]))
            results.add(Figure(suite: "pkcs11", name: "\(emulator): unwraps, concurrency 16 (pool of 4 idle sessions)", value: sixteen,
                               unit: "op/s", anchor: anchor.privatePerSecond, anchorName: "openssl rsa2048 private ops", target: nil,
                               detail: figures.filter { $0.key.hasPrefix("pool") }))
        }
    }

    /// The local vault's unwraps per second, one at a time, for `seconds`.
    static func localUnwraps(scratch: String, seconds: Double) async throws -> Double {
        let (vault, key, version, _, _, wrapped) = try await CryptoBench.localVault(directory: scratch + "/pkcs11-local-vault")
        return try await Rate.measure(units: 1, seconds: seconds) {
            _ = try await vault.unwrap(wrapped.wrappedKey, key: key, version: version.id, algorithm: .rsaOAEP256)
        }.perWallSecond
    }

    @discardableResult
    static func runTool(_ path: String, _ arguments: [String], environment extra: [String: String]) throws -> String {
        let (status, text) = try LoggedProcess.run(path, arguments, environment: ProcessInfo.processInfo.environment.merging(extra) { _, new in new })
        guard status == 0 else {
            throw OpenSSLAnchor.Failure(description: "\(path) \(arguments.first ?? "") exited \(status):\n\(text)")
        }
        return text
    }
}

/// `cmk-bench pkcs11-token`: unwraps through the provider on one token, at concurrency 1 and 16,
/// printed as one JSON line (with the pool's statistics of the concurrent phase).
struct PKCS11TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pkcs11-token", abstract: "Measures unwraps on one PKCS#11 token (used by `run`; prints JSON).",
                                                    shouldDisplay: false)

    @Option var module: String
    @Option var label: String
    @Option(help: "The PIN file; '-' for the openCryptoki namespace's.") var pinFile: String
    @Option var algorithm: String
    @Option var seconds: Double = 2

    func run() async throws {
        guard let algorithm = WrapAlgorithm(rawValue: algorithm) else { throw ValidationError("--algorithm: A256KWP or RSA-OAEP-256") }
        let pin = pinFile == "-" ? OpenCryptokiNamespace.pinFile : pinFile
        let vault = try PKCS11KeyVault(configuration: PKCS11VaultConfiguration(modulePath: module, tokenLabel: label, pin: .file(pin),
                                                                                sessions: 4, wrapAlgorithm: algorithm))
        let key = try KeyReference("bench-\(UUID().uuidString.prefix(8).lowercased())")
        let version = try await vault.createKey(key, size: .bits2048)
        let dek = DEKWrapping.generateDEK()
        let wrapped = algorithm == .rsaOAEP256
            ? try DEKWrapping.wrap(dek, with: try await vault.publicKey(of: key, version: version.id))
            : try await vault.wrap(dek, key: key, version: version.id, algorithm: algorithm)
        guard try await vault.unwrap(wrapped, key: key, version: version.id, algorithm: algorithm) == dek else {
            throw ValidationError("the token unwrapped another DEK")
        }
        let one = try await Rate.measure(units: 1, seconds: seconds) {
            _ = try await vault.unwrap(wrapped, key: key, version: version.id, algorithm: algorithm)
        }.perWallSecond
        let before = vault.poolStatistics
        let sixteen = try await Rate.measure(units: 16, seconds: seconds) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<16 { group.addTask { _ = try await vault.unwrap(wrapped, key: key, version: version.id, algorithm: algorithm) } }
                try await group.waitForAll()
            }
        }.perWallSecond
        let after = vault.poolStatistics
        let figures: [String: Double] = [
            "unwraps/s c1": one, "unwraps/s c16": sixteen,
            "pool calls": Double(after.calls - before.calls), "pool sessions opened": Double(after.opened - before.opened),
            "pool sessions closed over 4 idle": Double(after.closedOverLimit - before.closedOverLimit), "pool peak in use": Double(after.peakInUse),
            "pool peak threads": Double(after.peakThreads),
        ]
        let json = try JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }
}
