import CMKCore
import Crypto
import Foundation

/// The per-object AES-256-GCM segment cipher shared by sealer and opener.
struct SegmentCipher: Sendable {
    /// index (4) | flags (1) | ciphertext length (4) | object tag (8)
    static let frameHeaderLength = 17
    static let tagLength = 16
    static let finalFlag: UInt8 = 0x01
    static let keyInfo = Array("cmk-syncer object key v1".utf8)

    let header: EnvelopeHeader
    let headerBytes: [UInt8]
    private let objectKey: SymmetricKey

    init(header: EnvelopeHeader, dek: SecretBytes) throws(EnvelopeError) {
        guard dek.count == 32 else { throw EnvelopeError(.invalidParameter, "a DEK has 32 bytes, not \(dek.count)") }
        self.header = header
        self.headerBytes = header.encoded()
        self.objectKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: dek.symmetricKey, salt: header.salt, info: Self.keyInfo, outputByteCount: 32)
    }

    func frameHeader(index: UInt32, final: Bool, length: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Self.frameHeaderLength)
        out.appendBigEndian(index)
        out.append(final ? Self.finalFlag : 0)
        out.appendBigEndian(UInt32(length))
        out += header.objectTag
        return out
    }

    private func nonce(index: UInt32, final: Bool) -> AES.GCM.Nonce {
        var bytes = header.noncePrefix
        bytes.appendBigEndian(index)
        bytes.append(final ? Self.finalFlag : 0)
        return try! AES.GCM.Nonce(data: bytes)
    }

    /// One complete frame: frame header, ciphertext, tag.
    func seal(_ plaintext: ArraySlice<UInt8>, index: UInt32, final: Bool, into out: inout [UInt8]) {
        let frame = frameHeader(index: index, final: final, length: plaintext.count)
        let box = try! AES.GCM.seal(plaintext, using: objectKey, nonce: nonce(index: index, final: final),
                                    authenticating: headerBytes + frame)
        out += frame
        out += box.ciphertext
        out += box.tag
    }

    /// Decrypts one segment whose frame header has already been checked.
    func open(ciphertext: ArraySlice<UInt8>, tag: ArraySlice<UInt8>, frame: ArraySlice<UInt8>, index: UInt32, final: Bool) throws(EnvelopeError) -> [UInt8] {
        do {
            let box = try AES.GCM.SealedBox(nonce: nonce(index: index, final: final), ciphertext: ciphertext, tag: tag)
            return Array(try AES.GCM.open(box, using: objectKey, authenticating: headerBytes + frame))
        } catch {
            throw EnvelopeError(.authenticationFailed,
                                "segment \(index) failed authentication: the object or its header was modified, or the DEK is wrong")
        }
    }
}
