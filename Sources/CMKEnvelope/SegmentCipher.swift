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
    let objectTag: [UInt8]
    private let objectKey: SymmetricKey

    init(header: EnvelopeHeader, dek: SecretBytes) throws(EnvelopeError) {
        guard dek.count == 32 else { throw EnvelopeError(.invalidParameter, "a DEK has 32 bytes, not \(dek.count)") }
        self.header = header
        self.headerBytes = header.encoded()
        self.objectTag = header.objectTag
        self.objectKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: dek.symmetricKey, salt: header.salt, info: Self.keyInfo, outputByteCount: 32)
    }

    func frameHeader(index: UInt32, final: Bool, length: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Self.frameHeaderLength)
        out.appendBigEndian(index)
        out.append(final ? Self.finalFlag : 0)
        out.appendBigEndian(UInt32(length))
        out += objectTag
        return out
    }

    private func nonce(index: UInt32, final: Bool) -> AES.GCM.Nonce {
        var bytes = header.noncePrefix
        bytes.appendBigEndian(index)
        bytes.append(final ? Self.finalFlag : 0)
        return try! AES.GCM.Nonce(data: bytes)
    }

    /// The bytes a sealed object of `plaintextCount` bytes takes after its header.
    static func sealedSize(plaintextCount: Int, segmentSize: Int) -> Int {
        let segments = max(1, (plaintextCount + segmentSize - 1) / segmentSize)
        return plaintextCount + segments * (frameHeaderLength + tagLength)
    }

    /// One complete frame appended to `out`: frame header, ciphertext, tag. swift-crypto returns
    /// the ciphertext in a buffer of its own, so each byte is copied once more, into `out`.
    func seal(_ plaintext: UnsafeRawBufferPointer, index: UInt32, final: Bool, into out: inout [UInt8]) {
        let frame = frameHeader(index: index, final: final, length: plaintext.count)
        let box = try! AES.GCM.seal(plaintext, using: objectKey, nonce: nonce(index: index, final: final),
                                    authenticating: headerBytes + frame)
        out += frame
        box.ciphertext.withUnsafeBytes { out.append(contentsOf: $0) }
        box.tag.withUnsafeBytes { out.append(contentsOf: $0) }
    }

    /// Decrypts one segment whose frame header has already been checked; appends the plaintext to `out`.
    func open(ciphertext: UnsafeRawBufferPointer, tag: UnsafeRawBufferPointer, frame: UnsafeRawBufferPointer, index: UInt32, final: Bool,
              into out: inout [UInt8]) throws(EnvelopeError) {
        do {
            let box = try AES.GCM.SealedBox(nonce: nonce(index: index, final: final), ciphertext: ciphertext, tag: tag)
            let plaintext = try AES.GCM.open(box, using: objectKey, authenticating: headerBytes + Array(frame))
            plaintext.withUnsafeBytes { out.append(contentsOf: $0) }
        } catch {
            throw EnvelopeError(.authenticationFailed,
                                "segment \(index) failed authentication: the object or its header was modified, or the DEK is wrong")
        }
    }

    /// Runs `body` over the bytes of `bytes` without copying them when they are contiguous.
    static func withBytes<R, E: Error>(_ bytes: some Collection<UInt8>, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E>? = bytes.withContiguousStorageIfAvailable { (buffer) -> Result<R, E> in
            do throws(E) { return .success(try body(UnsafeRawBufferPointer(buffer))) } catch { return .failure(error) }
        }
        if let result { return try result.get() }
        return try Array(bytes).withUnsafeBytes { (raw) -> Result<R, E> in
            do throws(E) { return .success(try body(raw)) } catch { return .failure(error) }
        }.get()
    }
}
