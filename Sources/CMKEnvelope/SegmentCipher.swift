import CLibcrypto
import CMKCore
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

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
    /// A segment's associated data, header || frame header: the header once per object, the
    /// frame's 17 bytes rewritten in place for each segment (no concatenation per segment).
    private var associatedData: [UInt8]
    /// The 12-byte nonce: the header's prefix once, index and flags rewritten per segment.
    private var nonceBytes: [UInt8]

    init(header: EnvelopeHeader, dek: SecretBytes) throws(EnvelopeError) {
        guard dek.count == 32 else { throw EnvelopeError(.invalidParameter, "a DEK has 32 bytes, not \(dek.count)") }
        self.header = header
        self.headerBytes = header.encoded()
        self.objectTag = header.objectTag
        self.objectKey = Self.objectKey(dek: dek, salt: header.salt)
        associatedData = headerBytes + [UInt8](repeating: 0, count: Self.frameHeaderLength)
        associatedData.replaceSubrange((associatedData.count - 8)..., with: objectTag)
        nonceBytes = header.noncePrefix + [0, 0, 0, 0, 0]
    }

    /// HKDF-SHA-256(IKM = DEK, salt, info = "cmk-syncer object key v1", L = 32) in libcrypto,
    /// reading the DEK where it lies in secret memory; the 32 bytes pass through a wiped stack
    /// buffer into swift-crypto's key, which holds them for this object (as before).
    static func objectKey(dek: SecretBytes, salt: [UInt8]) -> SymmetricKey {
        withUnsafeTemporaryAllocation(byteCount: 32, alignment: 16) { buffer in
            defer { explicit_bzero(buffer.baseAddress!, buffer.count) }
            let derived = dek.withUnsafeBytes { ikm in
                salt.withUnsafeBytes { salt in
                    keyInfo.withUnsafeBytes { info in
                        cmk_hkdf_sha256(ikm.baseAddress?.assumingMemoryBound(to: UInt8.self), ikm.count,
                                        salt.baseAddress?.assumingMemoryBound(to: UInt8.self), salt.count,
                                        info.baseAddress?.assumingMemoryBound(to: UInt8.self), info.count,
                                        buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), 32)
                    }
                }
            }
            precondition(derived == 1, "HKDF-SHA-256 refused a 32-byte salt")
            return SymmetricKey(data: UnsafeRawBufferPointer(buffer))
        }
    }

    /// Sets the frame header of segment `index` in ``associatedData`` and the nonce's last 5 bytes.
    private mutating func prepare(index: UInt32, final: Bool, length: Int) {
        let base = headerBytes.count
        let flags = final ? Self.finalFlag : 0
        associatedData.withUnsafeMutableBufferPointer { frame in
            frame[base] = UInt8(index >> 24); frame[base + 1] = UInt8((index >> 16) & 0xFF)
            frame[base + 2] = UInt8((index >> 8) & 0xFF); frame[base + 3] = UInt8(index & 0xFF)
            frame[base + 4] = flags
            let count = UInt32(length)
            frame[base + 5] = UInt8(count >> 24); frame[base + 6] = UInt8((count >> 16) & 0xFF)
            frame[base + 7] = UInt8((count >> 8) & 0xFF); frame[base + 8] = UInt8(count & 0xFF)
        }
        nonceBytes.withUnsafeMutableBufferPointer { nonce in
            nonce[7] = UInt8(index >> 24); nonce[8] = UInt8((index >> 16) & 0xFF)
            nonce[9] = UInt8((index >> 8) & 0xFF); nonce[10] = UInt8(index & 0xFF)
            nonce[11] = flags
        }
    }

    private var nonce: AES.GCM.Nonce { try! AES.GCM.Nonce(data: nonceBytes) }

    /// The bytes a sealed object of `plaintextCount` bytes takes after its header.
    static func sealedSize(plaintextCount: Int, segmentSize: Int) -> Int {
        let segments = max(1, (plaintextCount + segmentSize - 1) / segmentSize)
        return plaintextCount + segments * (frameHeaderLength + tagLength)
    }

    /// One complete frame appended to `out`: frame header, ciphertext, tag. swift-crypto returns
    /// the ciphertext in a buffer of its own, so each byte is copied once more, into `out`.
    mutating func seal(_ plaintext: UnsafeRawBufferPointer, index: UInt32, final: Bool, into out: inout [UInt8]) {
        prepare(index: index, final: final, length: plaintext.count)
        let box = try! AES.GCM.seal(plaintext, using: objectKey, nonce: nonce, authenticating: associatedData)
        out.append(contentsOf: associatedData[headerBytes.count...])
        box.ciphertext.withUnsafeBytes { out.append(contentsOf: $0) }
        box.tag.withUnsafeBytes { out.append(contentsOf: $0) }
    }

    /// Decrypts one segment whose frame header has already been checked (so it is the one
    /// ``prepare(index:final:length:)`` writes); appends the plaintext to `out`.
    mutating func open(ciphertext: UnsafeRawBufferPointer, tag: UnsafeRawBufferPointer, index: UInt32, final: Bool,
                       into out: inout [UInt8]) throws(EnvelopeError) {
        prepare(index: index, final: final, length: ciphertext.count)
        do {
            let box = try AES.GCM.SealedBox(nonce: nonce, ciphertext: ciphertext, tag: tag)
            let plaintext = try AES.GCM.open(box, using: objectKey, authenticating: associatedData)
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
