import CLibcrypto
import CMKCore
@testable import CMKEnvelope
import Crypto
import Foundation
import Testing

/// The envelope as sealed before issue 20 (item 2) made small objects fast: swift-crypto's HKDF
/// and AES-GCM, one call each, built from docs/envelope-format.md alone. The fast path must
/// write the same bytes and open what this writes.
enum ReferenceEnvelope {
    static func seal(_ plaintext: [UInt8], dek: [UInt8], dekID: DEKID, account: String, object: String,
                     segmentSize: Int, salt: [UInt8], noncePrefix: [UInt8]) throws -> [UInt8] {
        func be16(_ value: Int) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
        func be32(_ value: Int) -> [UInt8] { [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)] }
        let accountBytes = Array(account.utf8), objectBytes = Array(object.utf8)
        var header: [UInt8] = Array("CMKE".utf8) + [1, 1] + be16(71 + accountBytes.count + objectBytes.count) + be32(segmentSize)
        header += dekID.bytes + salt + noncePrefix + be16(accountBytes.count) + accountBytes + be16(objectBytes.count) + objectBytes
        let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: dek), salt: salt,
                                         info: Array("cmk-syncer object key v1".utf8), outputByteCount: 32)
        let segments = max(1, (plaintext.count + segmentSize - 1) / segmentSize)
        var out = header
        for index in 0..<segments {
            let part = Array(plaintext[min(plaintext.count, index * segmentSize)..<min(plaintext.count, (index + 1) * segmentSize)])
            let flags: UInt8 = index == segments - 1 ? 1 : 0
            let frame = be32(index) + [flags] + be32(part.count) + Array(salt[0..<8])
            let box = try AES.GCM.seal(part, using: key, nonce: try AES.GCM.Nonce(data: noncePrefix + be32(index) + [flags]),
                                       authenticating: header + frame)
            out += frame + Array(box.ciphertext) + Array(box.tag)
        }
        return out
    }
}

private func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

@Suite("Envelope known answers: the fast path writes the format's bytes")
struct EnvelopeVectorTests {
    /// 30 bytes in 16-byte segments under DEK 00..1f, DEK id a0..af, salt 40..5f, nonce prefix
    /// 70..76, account "acct-1", object "reports/q1". Computed independently with Python's
    /// `cryptography` (HKDF, AESGCM) from docs/envelope-format.md; the code before issue 20
    /// (swift-crypto's HKDF and AES.GCM) writes the same bytes.
    static let vector = """
        434d4b450101005700000010a0a1a2a3a4a5a6a7a8a9aaabacadaeaf404142434445464748494a4b4c4d4e4f50515253545556\
        5758595a5b5c5d5e5f707172737475760006616363742d31000a7265706f7274732f713100000000000000001040414243444546\
        470b3a22e35826f2827b33c2fccd04248db0ff8baf03dd69b2c731243804c03b5200000001010000000e40414243444546479e8d\
        6a864fea365bd83f167bca9dd8cda3da05084dd8e687ffafce55a3d9
        """
    static let plaintext = Array("cmk-syncer envelope vector, v1".utf8)

    @Test("a fixed object: sealed to the same bytes, and opened")
    func knownAnswer() throws {
        let dek = SecretBytes(copying: Array(0..<32))
        let dekID = try DEKID(bytes: Array(0xA0...0xAF))
        var sealer = try EnvelopeSealer(dek: dek, dekID: dekID, account: "acct-1", object: "reports/q1", segmentSize: 16,
                                        salt: Array(0x40...0x5F), noncePrefix: Array(0x70...0x76))
        var sealed = [UInt8]()
        sealer.update(Self.plaintext, into: &sealed)
        sealer.finish(into: &sealed)
        #expect(Hex.encode(sealed) == Self.vector)
        let stored = try #require(Hex.decode(Self.vector))
        #expect(try EnvelopeOpener.open(stored, account: "acct-1", objectID: "reports/q1", dek: { _ in dek }) == Self.plaintext)
    }

    @Test("random objects: the same bytes as swift-crypto's HKDF and AES-GCM, each opened",
          arguments: [(0, 64), (1, 64), (15, 16), (16, 16), (17, 16), (4096, 65_536), (70_000, 65_536), (200_000, 4096)])
    func matchesReference(size: Int, segmentSize: Int) throws {
        let dekBytes = randomBytes(32), salt = randomBytes(32), prefix = randomBytes(7)
        let dek = SecretBytes(copying: dekBytes), dekID = DEKID.random()
        let plaintext = randomBytes(size)
        var sealer = try EnvelopeSealer(dek: dek, dekID: dekID, account: "acct-file-1", object: "objects/\(size)",
                                        segmentSize: segmentSize, salt: salt, noncePrefix: prefix)
        var sealed = [UInt8]()
        sealer.update(plaintext, into: &sealed)
        sealer.finish(into: &sealed)
        let reference = try ReferenceEnvelope.seal(plaintext, dek: dekBytes, dekID: dekID, account: "acct-file-1", object: "objects/\(size)",
                                                   segmentSize: segmentSize, salt: salt, noncePrefix: prefix)
        let difference = zip(sealed, reference).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? (sealed.count == reference.count ? nil : min(sealed.count, reference.count))
        #expect(difference == nil, "the sealed object (\(sealed.count) bytes) differs from the reference (\(reference.count) bytes) from byte \(difference ?? -1)")
        #expect(try EnvelopeOpener.open(reference, account: "acct-file-1", objectID: "objects/\(size)", dek: { _ in dek }) == plaintext)
    }

    @Test("a failed open leaves nothing behind: seal A, B, C; B tampered is refused, then C and A open")
    func failedOpenThenNext() throws {
        let dek = DEKWrapping.generateDEK(), dekID = DEKID.random()
        let objects = [randomBytes(4096), randomBytes(4096), randomBytes(70_000)]
        let sealed = try objects.enumerated().map { try EnvelopeSealer.seal($0.element, dek: dek, dekID: dekID, account: "a", object: "o\($0.offset)") }
        var tampered = sealed[1]
        tampered[tampered.count - 20] ^= 0x01
        #expect(throws: EnvelopeError(.authenticationFailed, "")) {
            _ = try EnvelopeOpener.open(tampered, account: "a", objectID: "o1", dek: { _ in dek })
        }
        #expect(try EnvelopeOpener.open(sealed[2], account: "a", objectID: "o2", dek: { _ in dek }) == objects[2])
        #expect(try EnvelopeOpener.open(sealed[0], account: "a", objectID: "o0", dek: { _ in dek }) == objects[0])
        #expect(try EnvelopeOpener.open(sealed[1], account: "a", objectID: "o1", dek: { _ in dek }) == objects[1])
    }
}

@Suite("HKDF-SHA-256 in libcrypto (the object key)")
struct ObjectKeyHKDFTests {
    func hkdf(ikm: [UInt8], salt: [UInt8], info: [UInt8], length: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: max(length, 1))
        let ok = cmk_hkdf_sha256(ikm, ikm.count, salt, salt.count, info, info.count, &out, length)
        return ok == 1 ? Array(out.prefix(length)) : nil
    }

    @Test("RFC 5869 test cases 1 and 3 (SHA-256), first 32 bytes of the OKM")
    func rfc5869() throws {
        let ikm = [UInt8](repeating: 0x0B, count: 22)
        #expect(hkdf(ikm: ikm, salt: Array(0x00...0x0C), info: Array(0xF0...0xF9), length: 32).map { Hex.encode($0) }
            == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf")
        #expect(hkdf(ikm: ikm, salt: [], info: [], length: 32).map { Hex.encode($0) }
            == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d")
    }

    @Test("random inputs: the same key as swift-crypto's HKDF, for every length 1-32")
    func matchesSwiftCrypto() {
        for length in 1...32 {
            let ikm = randomBytes(32), salt = randomBytes(Int.random(in: 0...64)), info = randomBytes(Int.random(in: 0...40))
            let expected = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: ikm), salt: salt, info: info, outputByteCount: length)
            #expect(hkdf(ikm: ikm, salt: salt, info: info, length: length) == expected.withUnsafeBytes { Array($0) })
        }
    }

    @Test("refuses what one block cannot give: 0 or 33 bytes out, a salt over 64 bytes")
    func bounds() {
        #expect(hkdf(ikm: [1], salt: [], info: [], length: 0) == nil)
        #expect(hkdf(ikm: [1], salt: [], info: [], length: 33) == nil)
        #expect(hkdf(ikm: [1], salt: randomBytes(65), info: [], length: 32) == nil)
    }
}
