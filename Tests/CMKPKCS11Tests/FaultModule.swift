import CMKTesting
import Foundation

/// The fault-injecting PKCS#11 module (Sources/CPKCS11FaultModule, built as
/// libCPKCS11FaultModule.so beside the test binary) in front of a SoftHSM token's module copy: a
/// private copy of the library per token (its rules are per loaded file), its control file and its
/// log of the rules applied. Rules: Sources/CPKCS11FaultModule/include/cmk_pkcs11_fault.h.
struct FaultModule: Sendable {
    let library: String
    let control: String
    let log: String

    static var built: String { BuiltExecutables.directory + "/libCPKCS11FaultModule.so" }

    /// A copy of the built library in `directory`; fails saying why when it was not built.
    static func make(in directory: URL) throws -> FaultModule {
        guard FileManager.default.fileExists(atPath: built) else {
            throw SoftHSMToken.Missing(description: "\(built) is missing: build the CPKCS11FaultModule product (swift build --build-tests builds it)")
        }
        let library = directory.appendingPathComponent("libcmk-pkcs11-fault-\(UUID().uuidString.prefix(8)).so").path
        try FileManager.default.copyItem(atPath: built, toPath: library)
        return FaultModule(library: library, control: directory.appendingPathComponent("fault.control").path,
                           log: directory.appendingPathComponent("fault.log").path)
    }

    /// The environment the library reads when the provider loads it.
    func environment(realModule: String) -> [String: String] {
        ["CMK_PKCS11_FAULT_MODULE": realModule, "CMK_PKCS11_FAULT_CONTROL": control, "CMK_PKCS11_FAULT_LOG": log]
    }

    /// Replaces the rules (read by the module at its next call); written whole, then renamed into place.
    func set(_ rules: [String]) throws {
        let staged = control + ".new"
        try (rules.joined(separator: "\n") + "\n").write(toFile: staged, atomically: false, encoding: .utf8)
        guard rename(staged, control) == 0 else { throw SoftHSMToken.Missing(description: "cannot rename \(staged): errno \(errno)") }
    }

    /// Removes every rule.
    func clear() throws { try set(["clear"]) }

    /// The rules applied so far, one `<function> <CK_RV>` each.
    var applied: [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }
}
