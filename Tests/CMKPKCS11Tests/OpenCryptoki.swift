import CMKCore
import CMKPKCS11
import CMKTesting
import Foundation
import Testing

/// The tests' side of ``OpenCryptokiNamespace``: a test re-runs itself inside one.
enum OpenCryptoki {
    static var module: String { OpenCryptokiNamespace.module }
    static var label: String { OpenCryptokiNamespace.label }
    static var inside: Bool { OpenCryptokiNamespace.inside }
    static var pinFile: String { OpenCryptokiNamespace.pinFile }
    typealias Failure = OpenCryptokiNamespace.Failure

    static func runInNamespace(_ command: [String], environment extra: [String: String] = [:]) throws -> (status: Int32, output: String) {
        try OpenCryptokiNamespace.runInNamespace(command, environment: extra)
    }

    /// Outside the namespace: runs this test binary filtered to `test` (a Swift Testing filter,
    /// e.g. `OpenCryptokiTests/conformance`) inside one, and records an issue with its output
    /// unless exactly one test ran and passed.
    static func runSelf(_ test: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let binary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let (status, output) = try runInNamespace([binary, "--testing-library", "swift-testing", "--no-parallel", "--filter", test])
        let ranOne = output.contains("Test run with 1 test") && output.contains("passed")
        #expect(status == 0 && ranOne, "\(test) in its openCryptoki namespace exited \(status):\n\(output.suffix(6000))",
                sourceLocation: sourceLocation)
    }

    /// Inside the namespace: the soft token as a test token.
    static func token() throws -> OpenCryptokiToken {
        guard inside else { throw Failure(description: "OpenCryptoki.token() is only available inside the test's namespace") }
        return OpenCryptokiToken()
    }
}

/// The namespace's soft token: one per namespace (openCryptoki's soft token is a single token),
/// with RSA-OAEP-256 (its soft token decrypts CKM_RSA_PKCS_OAEP with SHA-256/MGF1-SHA-256 and has
/// no AES key wrap).
struct OpenCryptokiToken: TestToken {
    var label: String { OpenCryptoki.label }
    var wrapAlgorithm: WrapAlgorithm { .rsaOAEP256 }
    var name: String { "openCryptoki" }

    func configuration(clock: any WallClock, sessions: Int, label: String? = nil) -> PKCS11VaultConfiguration {
        PKCS11VaultConfiguration(modulePath: OpenCryptoki.module, tokenLabel: label ?? self.label, pin: .file(OpenCryptoki.pinFile),
                                 sessions: sessions, wrapAlgorithm: .rsaOAEP256, clock: clock)
    }

    func vault(clock: any WallClock, sessions: Int) throws -> PKCS11KeyVault {
        try PKCS11KeyVault(configuration: configuration(clock: clock, sessions: sessions))
    }

    /// The same module asked for a label no slot holds: the HSM is gone for this process.
    func unplugged(clock: any WallClock) throws -> (vault: PKCS11KeyVault, present: String) {
        (try PKCS11KeyVault(configuration: configuration(clock: clock, sessions: 2, label: "unplugged-hsm")), label)
    }

    func remove() {}
}

/// A token the shared suites run on: SoftHSM (A256KWP) or openCryptoki's soft token (RSA-OAEP-256).
protocol TestToken: Sendable {
    var label: String { get }
    var wrapAlgorithm: WrapAlgorithm { get }
    var name: String { get }
    func vault(clock: any WallClock, sessions: Int) throws -> PKCS11KeyVault
    /// A provider of the same host whose token is gone, and the label of the token still present.
    func unplugged(clock: any WallClock) throws -> (vault: PKCS11KeyVault, present: String)
    func remove()
}
