import CLibcrypto
import CMKCore
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
    /// The encoded header's length: the first bytes of ``associatedData``.
    let headerLength: Int
    /// AES-256-GCM keyed once with the object key, for every segment of the object.
    private let context: GCMContext
    /// A segment's associated data, header || frame header: the header once per object, the
    /// frame's 17 bytes rewritten in place for each segment (no concatenation per segment).
    private var associatedData: [UInt8]
    /// The 12-byte nonce: the header's prefix once, index and flags rewritten per segment.
    private var nonceBytes: [UInt8]

    init(header: EnvelopeHeader, dek: SecretBytes) throws(EnvelopeError) {
        guard dek.count == 32 else { throw EnvelopeError(.invalidParameter, "a DEK has 32 bytes, not \(dek.count)") }
        self.header = header
        self.context = Self.objectKey(dek: dek, salt: header.salt)
        associatedData = header.encoded(reserving: Self.frameHeaderLength)
        headerLength = associatedData.count
        associatedData.append(contentsOf: repeatElement(0, count: Self.frameHeaderLength - 8))
        associatedData.append(contentsOf: header.salt[0..<8])  // the object tag
        nonceBytes = [UInt8](repeating: 0, count: 12)
        nonceBytes.replaceSubrange(0..<7, with: header.noncePrefix)
    }

    /// The encoded header.
    var headerBytes: ArraySlice<UInt8> { associatedData[..<headerLength] }

    /// The first 8 bytes of the salt, repeated in every frame (the frame's last 8 bytes).
    var objectTag: ArraySlice<UInt8> { associatedData[(associatedData.count - 8)...] }

    /// HKDF-SHA-256(IKM = DEK, salt, info = "cmk-syncer object key v1", L = 32) in libcrypto,
    /// reading the DEK where it lies in secret memory; the 32 bytes pass through a wiped stack
    /// buffer into the AES-GCM context's key schedule, which BoringSSL wipes when it is freed.
    static func objectKey(dek: SecretBytes, salt: [UInt8]) -> GCMContext {
        withUnsafeTemporaryAllocation(byteCount: 32, alignment: 16) { buffer in
            defer { explicit_bzero(buffer.baseAddress!, buffer.count) }
            let key = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let derived = dek.withUnsafeBytes { ikm in
                salt.withUnsafeBytes { salt in
                    keyInfo.withUnsafeBytes { info in
                        cmk_hkdf_sha256(ikm.baseAddress?.assumingMemoryBound(to: UInt8.self), ikm.count,
                                        salt.baseAddress?.assumingMemoryBound(to: UInt8.self), salt.count,
                                        info.baseAddress?.assumingMemoryBound(to: UInt8.self), info.count, key, 32)
                    }
                }
            }
            precondition(derived == 1, "HKDF-SHA-256 refused a 32-byte salt")
            return GCMContext(key: key)
        }
    }

    /// Sets the frame header of segment `index` in ``associatedData`` and the nonce's last 5 bytes.
    private mutating func prepare(index: UInt32, final: Bool, length: Int) {
        let base = headerLength
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

    /// The bytes a sealed object of `plaintextCount` bytes takes after its header.
    static func sealedSize(plaintextCount: Int, segmentSize: Int) -> Int {
        let segments = max(1, (plaintextCount + segmentSize - 1) / segmentSize)
        return plaintextCount + segments * (frameHeaderLength + tagLength)
    }

    /// One complete frame appended to `out`: frame header, ciphertext, tag. The plaintext is
    /// copied to its place in `out` and encrypted there: one pass over the bytes besides the AES-GCM one.
    mutating func seal(_ plaintext: UnsafeRawBufferPointer, index: UInt32, final: Bool, into out: inout [UInt8]) {
        prepare(index: index, final: final, length: plaintext.count)
        out.append(contentsOf: associatedData[headerLength...])
        let start = out.count
        out.append(contentsOf: plaintext)
        out.append(contentsOf: Self.emptyTag)
        let sealed = withParameters { nonce, ad in
            out.withUnsafeMutableBufferPointer { buffer in
                let body = buffer.baseAddress! + start
                return cmk_gcm_seal(context.pointer, nonce, ad.baseAddress, ad.count, body, plaintext.count, body, body + plaintext.count)
            }
        }
        precondition(sealed == 1, "AES-256-GCM refused to seal a segment")
    }

    /// Decrypts one segment whose frame header has already been checked (so it is the one
    /// ``prepare(index:final:length:)`` writes); appends the plaintext to `out`, or nothing if
    /// the segment fails authentication.
    mutating func open(ciphertext: UnsafeRawBufferPointer, tag: UnsafeRawBufferPointer, index: UInt32, final: Bool,
                       into out: inout [UInt8]) throws(EnvelopeError) {
        prepare(index: index, final: final, length: ciphertext.count)
        let start = out.count
        out.append(contentsOf: ciphertext)
        let opened = withParameters { nonce, ad in
            out.withUnsafeMutableBufferPointer { buffer in
                let body = buffer.baseAddress! + start
                return cmk_gcm_open(context.pointer, nonce, ad.baseAddress, ad.count, body, ciphertext.count,
                                    tag.baseAddress!.assumingMemoryBound(to: UInt8.self), body)
            }
        }
        guard opened == 1 else {
            out.removeSubrange(start...)
            throw EnvelopeError(.authenticationFailed,
                                "segment \(index) failed authentication: the object or its header was modified, or the DEK is wrong")
        }
    }

    private static let emptyTag = [UInt8](repeating: 0, count: tagLength)

    private func withParameters<R>(_ body: (UnsafePointer<UInt8>, UnsafeBufferPointer<UInt8>) -> R) -> R {
        nonceBytes.withUnsafeBufferPointer { nonce in associatedData.withUnsafeBufferPointer { body(nonce.baseAddress!, $0) } }
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

/// One AES-256-GCM context (BoringSSL's `EVP_AEAD_CTX`, CLibcrypto's boringssl_aead.h) keyed with
/// an object key: set up once per object, used for every segment, freed (and wiped) with the
/// object's sealer or opener. Seal and open only read it, so copies of a sealer may share it.
final class GCMContext: @unchecked Sendable {
    let pointer: OpaquePointer

    init(key: UnsafePointer<UInt8>) {
        guard let pointer = cmk_gcm_new(key) else { preconditionFailure("BoringSSL refused a 32-byte AES-256-GCM key") }
        self.pointer = pointer
    }

    deinit { cmk_gcm_free(pointer) }
}
