import CMKCore
import CMKPKCS11
import CMKTesting
import Foundation
import Synchronization

/// A SoftHSM v2 token of its own for one test: a temporary directory with a softhsm2.conf, a
/// token initialised there with `softhsm2-util --init-token`, a PIN file (mode 0600) and a private
/// copy of SoftHSM's module, so that each test's module instance reads its own configuration
/// (SoftHSM reads SOFTHSM2_CONF once, at C_Initialize). Fails saying why when softhsm2 is missing.
struct SoftHSMToken: TestToken {
    var name: String { "SoftHSM" }
    var wrapAlgorithm: WrapAlgorithm { .aesKeyWrapPad }
    static let systemModule = "/usr/lib/softhsm/libsofthsm2.so"
    static let softhsmUtil = "/usr/bin/softhsm2-util"
    /// SOFTHSM2_CONF is process-wide: loading a module copy (its C_Initialize) happens under this lock.
    static let environmentLock = Mutex(())

    let directory: URL
    let label: String
    let pin: String
    let modulePath: String
    let pinFile: String
    /// The fault-injecting module in front of the module copy (``withFaults()``), if any.
    var fault: FaultModule?
    var configFile: String { directory.appendingPathComponent("softhsm2.conf").path }
    var tokenDirectory: String { directory.appendingPathComponent("tokens").path }

    struct Missing: Error, CustomStringConvertible {
        let description: String
    }

    static func make(label: String = "cmk-test", pin: String = "4711-test") throws -> SoftHSMToken {
        for path in [systemModule, softhsmUtil] where !FileManager.default.fileExists(atPath: path) {
            throw Missing(description: "\(path) is missing: install Debian's softhsm2 package (scripts/install-deps.sh) to run the PKCS#11 tests")
        }
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("cmk-softhsm-\(UUID().uuidString.prefix(8))")
        let tokens = directory.appendingPathComponent("tokens")
        try FileManager.default.createDirectory(at: tokens, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let config = directory.appendingPathComponent("softhsm2.conf")
        try "directories.tokendir = \(tokens.path)\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
            .write(to: config, atomically: true, encoding: .utf8)
        let module = directory.appendingPathComponent("libsofthsm2-\(UUID().uuidString.prefix(8)).so")
        // The package ships the module as a relative symlink: copy the file it points to.
        try FileManager.default.copyItem(atPath: URL(fileURLWithPath: systemModule).resolvingSymlinksInPath().path, toPath: module.path)
        let pinFile = directory.appendingPathComponent("token.pin")
        FileManager.default.createFile(atPath: pinFile.path, contents: Data((pin + "\n").utf8), attributes: [.posixPermissions: 0o600])
        let token = SoftHSMToken(directory: directory, label: label, pin: pin, modulePath: module.path, pinFile: pinFile.path, fault: nil)
        try token.run(softhsmUtil, ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "so-\(pin)"])
        return token
    }

    /// Runs a tool with SOFTHSM2_CONF pointing at this token's configuration; throws with its output on failure.
    @discardableResult
    func run(_ tool: String, _ arguments: [String], environment extra: [String: String] = [:]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SOFTHSM2_CONF"] = configFile
        for (name, value) in extra { environment[name] = value }
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw Missing(description: "\(tool) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(text)")
        }
        return text
    }

    func configuration(clock: any WallClock = SystemWallClock(), retentionDays: Int = 90, sessions: Int = 4,
                       wrapAlgorithm: WrapAlgorithm = .aesKeyWrapPad) -> PKCS11VaultConfiguration {
        PKCS11VaultConfiguration(modulePath: modulePath, tokenLabel: label, pin: .file(pinFile), retentionDays: retentionDays,
                                 sessions: sessions, wrapAlgorithm: wrapAlgorithm, clock: clock)
    }

    /// This token with its providers loading the fault-injecting module (``FaultModule``) in front of
    /// the SoftHSM copy.
    func withFaults() throws -> SoftHSMToken {
        var token = self
        token.fault = try FaultModule.make(in: directory)
        return token
    }

    /// Opens the provider on this token (loading a module copy under SOFTHSM2_CONF). With `spyLog`,
    /// the module is OpenSC's pkcs11-spy wrapping this SoftHSM copy, logging every call to that file;
    /// after ``withFaults()``, the fault-injecting module in front of it.
    func vault(clock: any WallClock, sessions: Int) throws -> PKCS11KeyVault { try vault(clock: clock, sessions: sessions, spyLog: nil) }

    func vault(clock: any WallClock = SystemWallClock(), sessions: Int = 4, spyLog: String? = nil,
               wrapAlgorithm: WrapAlgorithm = .aesKeyWrapPad) throws -> PKCS11KeyVault {
        var configuration = configuration(clock: clock, sessions: sessions, wrapAlgorithm: wrapAlgorithm)
        if spyLog != nil {
            guard FileManager.default.fileExists(atPath: Self.spyModule) else {
                throw Missing(description: "\(Self.spyModule) is missing: install Debian's opensc package (scripts/install-deps.sh) for the pkcs11-spy test")
            }
            let copy = directory.appendingPathComponent("pkcs11-spy-\(UUID().uuidString.prefix(8)).so").path
            try FileManager.default.copyItem(atPath: URL(fileURLWithPath: Self.spyModule).resolvingSymlinksInPath().path, toPath: copy)
            configuration.modulePath = copy
        } else if let fault {
            configuration.modulePath = fault.library
        }
        return try Self.environmentLock.withLock { _ in
            setenv("SOFTHSM2_CONF", configFile, 1)
            if let spyLog {
                // pkcs11-spy reads these when its C_GetFunctionList loads the real module.
                setenv("PKCS11SPY", modulePath, 1)
                setenv("PKCS11SPY_OUTPUT", spyLog, 1)
            }
            // The fault module reads these when its C_GetFunctionList loads the real module.
            let faultEnvironment = spyLog == nil ? fault?.environment(realModule: modulePath) ?? [:] : [:]
            for (name, value) in faultEnvironment { setenv(name, value, 1) }
            defer {
                unsetenv("PKCS11SPY")
                unsetenv("PKCS11SPY_OUTPUT")
                faultEnvironment.keys.forEach { unsetenv($0) }
            }
            return try PKCS11KeyVault(configuration: configuration)
        }
    }

    static let spyModule = "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so"

    /// A provider of the same host asking for a label no slot holds: the HSM is gone.
    func unplugged(clock: any WallClock) throws -> (vault: PKCS11KeyVault, present: String) {
        var configuration = configuration(clock: clock, sessions: 2)
        configuration.tokenLabel = "unplugged-hsm"
        return (try PKCS11KeyVault(configuration: configuration), label)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}
