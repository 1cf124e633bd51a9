@testable import CMKPKCS11
import CMKCore
import CMKEnvelope
import CPKCS11
import CMKTesting
import Foundation
import Testing

/// One call in a pkcs11-spy log: its function, the attribute types of its templates, the handles
/// it names and returns, and its return value.
struct SpyCall {
    var function: String
    var lines: [String] = []

    var returned: String { lines.last { $0.hasPrefix("Returned:") }?.split(separator: " ").last.map(String.init) ?? "?" }
    var ok: Bool { returned == "CKR_OK" }
    /// Attribute lines of the templates (`CKA_… value`), in and out.
    var attributes: [(name: String, value: String)] {
        lines.compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("    CKA_"), let name = trimmed.split(separator: " ").first else { return nil }
            return (String(name), trimmed.dropFirst(name.count).trimmingCharacters(in: .whitespaces))
        }
    }
    /// The attribute lines of C_GenerateKeyPair's private-key template.
    var privateTemplate: [(name: String, value: String)] {
        guard let start = lines.firstIndex(where: { $0.contains("pPrivateKeyTemplate") }) else { return [] }
        let end = lines[(start + 1)...].firstIndex { $0.hasPrefix("[") } ?? lines.endIndex
        return SpyCall(function: function, lines: Array(lines[(start + 1)..<end])).attributes
    }
    func handle(_ label: String) -> String? {
        lines.first { $0.hasPrefix(label) }.map { String($0.split(separator: "=").last!).trimmingCharacters(in: .whitespaces) }
    }
    var matches: [String] { lines.filter { $0.hasPrefix("Object ") && $0.hasSuffix(" matches") }.map { String($0.split(separator: " ")[1]) } }

    static func parse(_ text: String) -> [SpyCall] {
        var calls: [SpyCall] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if let colon = line.firstIndex(of: ":"), Int(line[..<colon]) != nil, line[line.index(after: colon)...].hasPrefix(" C_") {
                calls.append(SpyCall(function: String(line[line.index(colon, offsetBy: 2)...])))
            } else if !calls.isEmpty {
                calls[calls.count - 1].lines.append(line)
            }
        }
        return calls
    }
}

/// What the provider may do on a token, checked on the log of every call it made.
enum SpyVerdict {
    static let expectedFunctions: Set<String> = [
        "C_GetFunctionList", "C_Initialize", "C_GetSlotList", "C_GetTokenInfo", "C_GetMechanismList", "C_OpenSession", "C_Login",
        "C_CloseSession", "C_FindObjectsInit", "C_FindObjects", "C_FindObjectsFinal", "C_GetAttributeValue", "C_SetAttributeValue",
        "C_CreateObject", "C_DestroyObject", "C_GenerateKey", "C_WrapKey", "C_UnwrapKey", "C_GetSessionInfo",
    ]
    /// With RSA-OAEP-256 versions the provider also generates key pairs and decrypts on the token.
    static let rsaFunctions: Set<String> = ["C_GenerateKeyPair", "C_DecryptInit", "C_Decrypt"]
    /// The attributes that hold a secret or private key's secret parts.
    static let secretParts: Set<String> = ["CKA_VALUE", "CKA_PRIVATE_EXPONENT", "CKA_PRIME_1", "CKA_PRIME_2", "CKA_EXPONENT_1",
                                           "CKA_EXPONENT_2", "CKA_COEFFICIENT"]
    static let rootKeyFlags = [("CKA_SENSITIVE", "True"), ("CKA_EXTRACTABLE", "False"), ("CKA_TOKEN", "True"), ("CKA_PRIVATE", "True")]

    /// The problems in a log: unexpected functions; a secret part (CKA_VALUE, an RSA private
    /// key's exponent or primes) asked of a token key (root key or RSA private key); a root key or
    /// private key generated without CKA_SENSITIVE true / CKA_EXTRACTABLE false / CKA_TOKEN true /
    /// CKA_PRIVATE true; C_SetAttributeValue touching anything but CKA_WRAP/CKA_UNWRAP (and
    /// CKA_DECRYPT with `rsa`); C_WrapKey of anything but a session DEK the provider created; a
    /// session object made on the token (CKA_TOKEN true) for a DEK.
    static func problems(_ calls: [SpyCall], rsa: Bool = false) -> [String] {
        var problems: [String] = []
        var tokenKeys: Set<String> = []
        var sessionKeys: Set<String> = []
        var findingKeys = false
        for (index, call) in calls.enumerated() {
            let at = "call \(index + 1) \(call.function)"
            let attributes = call.attributes
            let names = Set(attributes.map(\.name))
            if !expectedFunctions.contains(call.function), !(rsa && rsaFunctions.contains(call.function)) {
                problems.append("\(at): not a call the provider makes")
            }
            switch call.function {
            case "C_FindObjectsInit":
                findingKeys = attributes.contains { $0.name == "CKA_CLASS" && ($0.value.hasPrefix("CKO_SECRET_KEY") || $0.value.hasPrefix("CKO_PRIVATE_KEY")) }
            case "C_FindObjects":
                if findingKeys { tokenKeys.formUnion(call.matches) }
            case "C_GenerateKey":
                for (name, value) in rootKeyFlags where !attributes.contains(where: { $0.name == name && $0.value == value }) {
                    problems.append("\(at): root key generated without \(name) \(value)")
                }
                if let key = call.handle("[out] hKey") { tokenKeys.insert(key); sessionKeys.remove(key) }
            case "C_GenerateKeyPair":
                let template = call.privateTemplate
                for (name, value) in rootKeyFlags where !template.contains(where: { $0.name == name && $0.value == value }) {
                    problems.append("\(at): private key generated without \(name) \(value)")
                }
                if let key = call.handle("[out] hPrivateKey") { tokenKeys.insert(key); sessionKeys.remove(key) }
            case "C_UnwrapKey":
                if attributes.contains(where: { $0.name == "CKA_TOKEN" && $0.value != "False" }) { problems.append("\(at): unwrapped DEK not a session object") }
                if let key = call.handle("[out] hKey") { sessionKeys.insert(key); tokenKeys.remove(key) }
            case "C_CreateObject":
                let secret = attributes.contains { $0.name == "CKA_CLASS" && $0.value.hasPrefix("CKO_SECRET_KEY") }
                if secret, !attributes.contains(where: { $0.name == "CKA_TOKEN" && $0.value == "False" }) {
                    problems.append("\(at): a DEK object made on the token, not in the session")
                }
                if let object = call.handle("[out] *phObject") {
                    tokenKeys.remove(object)
                    if secret { sessionKeys.insert(object) } else { sessionKeys.remove(object) }
                }
            case "C_DestroyObject":
                if let object = call.handle("[in] hObject") { tokenKeys.remove(object); sessionKeys.remove(object) }
            case "C_GetAttributeValue":
                if let part = names.intersection(secretParts).sorted().first, let object = call.handle("[in] hObject"), tokenKeys.contains(object) {
                    problems.append("\(at): \(part) asked of root key \(object) (\(call.returned))")
                }
            case "C_SetAttributeValue":
                let touched = names.subtracting(rsa ? ["CKA_WRAP", "CKA_UNWRAP", "CKA_DECRYPT"] : ["CKA_WRAP", "CKA_UNWRAP"])
                if !touched.isEmpty { problems.append("\(at): changes \(touched.sorted())") }
            case "C_WrapKey":
                if let key = call.handle("[in] hKey"), !sessionKeys.contains(key) || tokenKeys.contains(key) {
                    problems.append("\(at): wraps \(key), not a session DEK")
                }
            default:
                break
            }
        }
        return problems
    }
}

@Suite("PKCS#11 provider: every call through pkcs11-spy", .serialized)
struct PKCS11SpyTests {
    @Test("the provider's calls on SoftHSM, recorded by pkcs11-spy: only the expected functions, root keys never read")
    func spyLog() async throws {
        let token = try SoftHSMToken.make()
        defer { token.remove() }
        let log = token.directory.appendingPathComponent("spy.log").path
        try await Self.story(try token.vault(spyLog: log), log: log, algorithm: .aesKeyWrapPad)
    }

    @Test("the provider's calls on openCryptoki (RSA-OAEP-256), recorded by pkcs11-spy: only the expected functions, private keys never read")
    func spyLogOpenCryptoki() async throws {
        guard OpenCryptoki.inside else { return try OpenCryptoki.runSelf("PKCS11SpyTests/spyLogOpenCryptoki") }
        let directory = URL(fileURLWithPath: OpenCryptokiNamespace.pinFile).deletingLastPathComponent()
        let log = directory.appendingPathComponent("spy.log").path
        let spy = directory.appendingPathComponent("pkcs11-spy.so").path
        try FileManager.default.copyItem(atPath: URL(fileURLWithPath: SoftHSMToken.spyModule).resolvingSymlinksInPath().path, toPath: spy)
        var configuration = try OpenCryptoki.token().configuration(clock: SystemWallClock(), sessions: 4)
        configuration.modulePath = spy
        setenv("PKCS11SPY", OpenCryptoki.module, 1)
        setenv("PKCS11SPY_OUTPUT", log, 1)
        let vault = try PKCS11KeyVault(configuration: configuration)
        unsetenv("PKCS11SPY")
        unsetenv("PKCS11SPY_OUTPUT")
        try await Self.story(vault, log: log, algorithm: .rsaOAEP256)
    }

    /// Create, wrap, unwrap, rotate, disable (the unwrap refused), enable, pull, restore, snapshot,
    /// wrap and unwrap with the new version; then the log's verdict.
    static func story(_ vault: PKCS11KeyVault, log: String, algorithm: WrapAlgorithm) async throws {
        let key = try KeyReference("spied-key")
        func wrap(_ dek: SecretBytes, _ version: String) async throws -> Data {
            algorithm == .rsaOAEP256
                ? try DEKWrapping.wrap(dek, with: try await vault.publicKey(of: key, version: version))
                : try await vault.wrap(dek, key: key, version: version, algorithm: algorithm)
        }
        let v1 = try await vault.createKey(key, size: .bits2048)
        let dek = DEKWrapping.generateDEK()
        let wrapped = try await wrap(dek, v1.id)
        #expect(try await vault.unwrap(wrapped, key: key, version: v1.id, algorithm: algorithm) == dek)
        let v2 = try await vault.rotateKey(key)
        _ = try await vault.updateVersion(key, version: v1.id, KeyVersionUpdate(enabled: false))
        await #expect(throws: VaultError.self) { _ = try await vault.unwrap(wrapped, key: key, version: v1.id, algorithm: algorithm) }
        _ = try await vault.updateVersion(key, version: v1.id, KeyVersionUpdate(enabled: true))
        _ = try await vault.deleteKey(key)
        _ = try await vault.recoverKey(key)
        _ = try await vault.snapshot(of: key)
        let again = try await wrap(dek, v2.id)
        #expect(try await vault.unwrap(again, key: key, version: v2.id, algorithm: algorithm) == dek)

        let calls = SpyCall.parse(try String(contentsOfFile: log, encoding: .utf8))
        let functions = Set(calls.map(\.function))
        print("pkcs11-spy (\(algorithm.rawValue)): \(calls.count) calls: \(functions.sorted().joined(separator: ", "))")
        #expect(calls.count > 50)
        let rsa = algorithm == .rsaOAEP256
        #expect(functions.isSuperset(of: rsa ? ["C_GenerateKeyPair", "C_DecryptInit", "C_Decrypt", "C_SetAttributeValue", "C_Login"]
                                             : ["C_GenerateKey", "C_WrapKey", "C_UnwrapKey", "C_SetAttributeValue", "C_Login"]))
        #expect(SpyVerdict.problems(calls, rsa: rsa) == [])
        // A256KWP: the unwrapped DEK is read from its session object, the only CKA_VALUE of a key that succeeds.
        let reads = calls.filter { $0.function == "C_GetAttributeValue" && $0.ok && $0.attributes.contains { $0.name == "CKA_VALUE" } }
        #expect(rsa || !reads.isEmpty)
    }

    @Test("the verdict catches a read of a root key's CKA_VALUE, a widened C_SetAttributeValue and an extractable root key")
    func verdictCatchesLeaks() throws {
        let log = """
            1: C_GenerateKey
            [in] hSession = 0x1
                CKA_SENSITIVE         False
                CKA_EXTRACTABLE       True
                CKA_TOKEN             True
                CKA_PRIVATE           True
            [out] hKey = 0x2
            Returned:  0 CKR_OK

            2: C_GetAttributeValue
            [in] hSession = 0x1
            [in] hObject = 0x2
            [in] pTemplate[1]:
                CKA_VALUE             0000000000000000 / 0
            Returned:  0 CKR_OK

            3: C_SetAttributeValue
            [in] hObject = 0x2
                CKA_EXTRACTABLE       True
            Returned:  0 CKR_OK

            4: C_WrapKey
            [in] hWrappingKey = 0x2
            [in] hKey = 0x2
            Returned:  0 CKR_OK

            5: C_Decrypt
            Returned:  0 CKR_OK

            6: C_GenerateKeyPair
            [in] pPublicKeyTemplate[1]:
                CKA_TOKEN             True
            [in] pPrivateKeyTemplate[4]:
                CKA_SENSITIVE         True
                CKA_EXTRACTABLE       True
                CKA_TOKEN             True
                CKA_PRIVATE           True
            [out] hPublicKey = 0x3
            [out] hPrivateKey = 0x4
            Returned:  0 CKR_OK

            7: C_GetAttributeValue
            [in] hObject = 0x4
                CKA_PRIVATE_EXPONENT  0000000000000000 / 0
            Returned:  0 CKR_OK
            """
        let problems = SpyVerdict.problems(SpyCall.parse(log))
        #expect(problems == [
            "call 1 C_GenerateKey: root key generated without CKA_SENSITIVE True",
            "call 1 C_GenerateKey: root key generated without CKA_EXTRACTABLE False",
            "call 2 C_GetAttributeValue: CKA_VALUE asked of root key 0x2 (CKR_OK)",
            "call 3 C_SetAttributeValue: changes [\"CKA_EXTRACTABLE\"]",
            "call 4 C_WrapKey: wraps 0x2, not a session DEK",
            "call 5 C_Decrypt: not a call the provider makes",
            "call 6 C_GenerateKeyPair: not a call the provider makes",
            "call 6 C_GenerateKeyPair: private key generated without CKA_EXTRACTABLE False",
            "call 7 C_GetAttributeValue: CKA_PRIVATE_EXPONENT asked of root key 0x4 (CKR_OK)",
        ])
        // With RSA versions the key-pair and decrypt calls are expected; the leaks still are not.
        #expect(SpyVerdict.problems(SpyCall.parse(log), rsa: true).filter { $0.contains("not a call") } == [])
    }

    @Test("the token refuses to reveal a root key: CKA_VALUE is CKR_ATTRIBUTE_SENSITIVE, CKA_SENSITIVE true, CKA_EXTRACTABLE false")
    func rootKeyStaysInTheToken() async throws {
        let token = try SoftHSMToken.make()
        defer { token.remove() }
        let vault = try token.vault()
        let key = try KeyReference("sealed-key")
        _ = try await vault.createKey(key, size: .bits2048)
        try vault.pool.withSession { (session) throws(PKCS11Failure) in
            let handles = try session.find(PKCS11KeyVault.versionTemplate(key, kind: .aes))
            #expect(handles.count == 1)
            let flags = try session.attributes([CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_TOKEN, CKA_PRIVATE], of: handles[0])
            #expect(flags[CKA_SENSITIVE] == [1] && flags[CKA_EXTRACTABLE] == [0] && flags[CKA_TOKEN] == [1] && flags[CKA_PRIVATE] == [1])
            do {
                _ = try session.attributes([CKA_VALUE], of: handles[0])
                Issue.record("the root key's CKA_VALUE must not be readable")
            } catch {
                #expect((error as? PKCS11Failure)?.name == "CKR_ATTRIBUTE_SENSITIVE")
            }
        }
    }
}
