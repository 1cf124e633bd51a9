import CLibcrypto
import CMKCore
import CMKEnvelope
import Crypto
import CryptoExtras
import Foundation
import Testing

/// The local vault's private operation in the system's libcrypto, checked against swift-crypto
/// (BoringSSL) and the `openssl` command line in both directions.
@Suite("RSA-OAEP-256 private key in libcrypto")
struct RSAOAEPPrivateKeyTests {
    static let refusal = "RSA-OAEP-256 unwrap failed: the wrapped key was not made by this key version or was modified"

    /// The PKCS#8 DER of a swift-crypto key (its `derRepresentation` is PKCS#1).
    private func pkcs8(_ key: _RSA.Encryption.PrivateKey) throws -> SecretBytes {
        let body = key.pkcs8PEMRepresentation.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        return SecretBytes(copying: try #require(Data(base64Encoded: body)))
    }

    @Test("swift-crypto wraps, libcrypto unwraps (PKCS#1 and PKCS#8 DER)", arguments: [2048, 3072, 4096])
    func swiftCryptoToLibcrypto(bits: Int) throws {
        let key = try _RSA.Encryption.PrivateKey(keySize: .init(bitCount: bits))
        let material = try DEKWrapping.material(of: key.publicKey)
        let pkcs1 = SecretBytes(copying: key.derRepresentation)
        let pkcs8 = try pkcs8(key)
        #expect(pkcs1 != pkcs8, "the two encodings differ, so both parsers are exercised")
        for der in [pkcs1, pkcs8] {
            let parsed = try RSAOAEPPrivateKey(derRepresentation: der)
            #expect(parsed.keySizeInBits == bits)
            for _ in 0..<3 {
                let dek = DEKWrapping.generateDEK()
                let wrapped = try DEKWrapping.wrap(dek, with: material)
                #expect(try parsed.unwrap(wrapped) == dek)
                #expect(try DEKWrapping.unwrap(wrapped, with: der) == dek)
            }
        }
    }

    @Test("openssl (libcrypto) wraps, swift-crypto and RSAOAEPPrivateKey unwrap", arguments: [2048, 3072, 4096])
    func libcryptoToSwiftCrypto(bits: Int) throws {
        let key = try _RSA.Encryption.PrivateKey(keySize: .init(bitCount: bits))
        let parsed = try RSAOAEPPrivateKey(derRepresentation: SecretBytes(copying: key.derRepresentation))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cmk-rsa-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let publicPEM = directory.appendingPathComponent("public.pem")
        try Data(key.publicKey.pemRepresentation.utf8).write(to: publicPEM)
        let dek = DEKWrapping.generateDEK()
        // The DEK goes to openssl on its standard input, never to disk.
        let wrapped = try openssl(["pkeyutl", "-encrypt", "-pubin", "-inkey", publicPEM.path,
                                   "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                                   "-pkeyopt", "rsa_mgf1_md:sha256"],
                                  input: dek.withUnsafeBytes { Data($0) })
        #expect(wrapped.count == bits / 8)
        #expect(try parsed.unwrap(wrapped) == dek)
        var plain = try key.decrypt(wrapped, padding: .PKCS1_OAEP_SHA256)
        defer { plain.resetBytes(in: 0..<plain.count) }
        #expect(SecretBytes(copying: plain) == dek)
    }

    @Test("a tampered wrapping, another key's wrapping and a wrong length are refused; the error queue stays empty")
    func refusals() throws {
        let key = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
        let other = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
        let parsed = try RSAOAEPPrivateKey(derRepresentation: SecretBytes(copying: key.derRepresentation))
        let dek = DEKWrapping.generateDEK()
        let wrapped = try DEKWrapping.wrap(dek, with: DEKWrapping.material(of: key.publicKey))
        for index in [0, 1, 100, 255] {
            var tampered = wrapped
            tampered[tampered.startIndex + index] ^= 0x01
            let error = try #require(throws: VaultError.self) { try parsed.unwrap(tampered) }
            #expect(error.code == .invalidInput && error.reason == Self.refusal, "byte \(index): \(error)")
            #expect(ERR_peek_error() == 0, "OpenSSL's error queue is cleared after a failure")
        }
        let foreign = try DEKWrapping.wrap(dek, with: DEKWrapping.material(of: other.publicKey))
        let error = try #require(throws: VaultError.self) { try parsed.unwrap(foreign) }
        #expect(error.code == .invalidInput && error.reason == Self.refusal)
        for count in [0, 255, 257, 512] {
            let error = try #require(throws: VaultError.self) { try parsed.unwrap(Data(repeating: 7, count: count)) }
            #expect(error.code == .invalidInput && error.reason == "wrapped key has \(count) bytes; an RSA-2048 wrapping has 256")
        }
        // Same length as the modulus but not below it: refused by OpenSSL, same message.
        let tooLarge = try #require(throws: VaultError.self) { try parsed.unwrap(Data(repeating: 0xFF, count: 256)) }
        #expect(tooLarge.reason == Self.refusal)
        #expect(ERR_peek_error() == 0)
        #expect(try parsed.unwrap(wrapped) == dek, "the key still works after failures")
    }

    @Test("DER that is not exactly one RSA private key is .corrupt, without its bytes in the message")
    func corruptDER() throws {
        let key = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
        let der = [UInt8](key.derRepresentation)
        let ecKey = [UInt8](P256.KeyAgreement.PrivateKey().derRepresentation)
        var flippedTag = der
        flippedTag[0] = 0x31
        let cases: [(String, [UInt8])] = [
            ("empty", []), ("truncated", Array(der.dropLast(10))), ("trailing byte", der + [0]),
            ("garbage", [UInt8](repeating: 0x5A, count: 1200)), ("not a SEQUENCE", flippedTag),
            ("a P-256 key", ecKey), ("an RSA public key", [UInt8](key.publicKey.derRepresentation)),
        ]
        let wrapped = try DEKWrapping.wrap(DEKWrapping.generateDEK(), with: DEKWrapping.material(of: key.publicKey))
        for (name, bytes) in cases {
            let error = try #require(throws: VaultError.self, "\(name)") { try RSAOAEPPrivateKey(derRepresentation: SecretBytes(copying: bytes)) }
            #expect(error.code == .corrupt, "\(name)")
            #expect(!error.description.contains(Data(bytes.prefix(32)).base64EncodedString()) || bytes.isEmpty, "\(name)")
            let viaDER = try #require(throws: VaultError.self, "\(name)") { try DEKWrapping.unwrap(wrapped, with: SecretBytes(copying: bytes)) }
            #expect(viaDER.code == .corrupt && viaDER.reason == "stored RSA private key does not parse", "\(name)")
            #expect(ERR_peek_error() == 0, "\(name): error queue cleared")
        }
    }

    @Test("one parsed key serves many concurrent unwraps")
    func concurrentUnwraps() async throws {
        let key = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
        let parsed = try RSAOAEPPrivateKey(derRepresentation: SecretBytes(copying: key.derRepresentation))
        let material = try DEKWrapping.material(of: key.publicKey)
        let pairs = try (0..<16).map { _ in
            let dek = DEKWrapping.generateDEK()
            return (dek, try DEKWrapping.wrap(dek, with: material))
        }
        let matches = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<16 {
                group.addTask {
                    var matched = 0
                    for round in 0..<25 {
                        let (dek, wrapped) = pairs[(task + round) % pairs.count]
                        if try parsed.unwrap(wrapped) == dek { matched += 1 }
                        var tampered = wrapped
                        tampered[tampered.startIndex] ^= 0x80
                        if (try? parsed.unwrap(tampered)) == nil { matched += 1 }
                    }
                    return matched
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(matches == 16 * 25 * 2)
    }

    private func openssl(_ arguments: [String], input: Data) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw OpenSSLFailed(message: "openssl \(arguments.joined(separator: " ")) failed: \(String(decoding: errors, as: UTF8.self))")
        }
        return output
    }

    struct OpenSSLFailed: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
