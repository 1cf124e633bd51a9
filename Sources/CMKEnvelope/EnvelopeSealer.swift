import CLibcrypto
import CMKCore
import Foundation

/// Encrypts one object as a stream, holding at most one segment of plaintext in memory.
///
/// Feed plaintext with ``update(_:)`` and end with ``finish()``; concatenating every returned
/// chunk gives the encrypted object (header first).
public struct EnvelopeSealer: Sendable {
    private var cipher: SegmentCipher
    private var pending: [UInt8] = []
    private var index: UInt32 = 0
    private var headerWritten = false
    private var finished = false

    /// - Parameters:
    ///   - dek: the 32-byte DEK; `dekID` is recorded in the header.
    ///   - account, object: bound into every segment's associated data.
    ///   - segmentSize: plaintext bytes per segment (default 64 KiB).
    public init(dek: SecretBytes, dekID: DEKID, account: String, object: String,
                segmentSize: Int = EnvelopeHeader.defaultSegmentSize) throws(EnvelopeError) {
        // Salt and nonce prefix in one draw: they are public (the header carries them). One draw
        // from the kernel's CSPRNG per object, through the vDSO where the kernel has getrandom
        // there (no system call; fork- and VM-clone-safe), else one getrandom(2).
        var random = [UInt8](repeating: 0, count: 39)
        // Like SystemRandomNumberGenerator, no object is sealed without fresh randomness.
        precondition(random.withUnsafeMutableBufferPointer({ cmk_random_bytes($0.baseAddress, $0.count) }) == 1,
                     "getrandom(2) failed: no random salt for a new object")
        try self.init(dek: dek, dekID: dekID, account: account, object: object, segmentSize: segmentSize,
                      salt: Array(random[0..<32]), noncePrefix: Array(random[32..<39]))
    }

    /// With a given salt and nonce prefix: for known-answer tests only (reusing them under one
    /// DEK reuses the object key and its nonces).
    init(dek: SecretBytes, dekID: DEKID, account: String, object: String, segmentSize: Int,
         salt: [UInt8], noncePrefix: [UInt8]) throws(EnvelopeError) {
        let header = try EnvelopeHeader(dekID: dekID, account: account, object: object, segmentSize: segmentSize,
                                        salt: salt, noncePrefix: noncePrefix)
        cipher = try SegmentCipher(header: header, dek: dek)
    }

    /// The header of the object being written.
    public var header: EnvelopeHeader { cipher.header }

    /// Adds plaintext; returns the encrypted bytes that are complete so far (possibly none).
    public mutating func update(_ plaintext: some Collection<UInt8>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(SegmentCipher.sealedSize(plaintextCount: pending.count + plaintext.count, segmentSize: cipher.header.segmentSize)
                            + (headerWritten ? 0 : cipher.headerBytes.count))
        update(plaintext, into: &out)
        return out
    }

    /// Adds plaintext, appending the encrypted bytes complete so far to `out`. Whole segments of a
    /// contiguous input are encrypted where they lie, without a copy into the pending segment.
    public mutating func update(_ plaintext: some Collection<UInt8>, into out: inout [UInt8]) {
        precondition(!finished, "EnvelopeSealer used after finish()")
        takeHeader(into: &out)
        let size = cipher.header.segmentSize
        SegmentCipher.withBytes(plaintext) { bytes in
            var input = bytes[...]
            while !input.isEmpty {
                if pending.count == size {
                    emit(final: false, into: &out)
                }
                // A whole segment with more input after it is not the final one: seal it in place.
                if pending.isEmpty, input.count > size {
                    seal(UnsafeRawBufferPointer(rebasing: input.prefix(size)), final: false, into: &out)
                    input = input.dropFirst(size)
                    continue
                }
                let take = Swift.min(size - pending.count, input.count)
                // Room for this object's bytes, up to one segment: a small object never allocates a whole segment.
                if pending.capacity < pending.count + take {
                    pending.reserveCapacity(Swift.min(size, Swift.max(pending.count + take, 2 * pending.capacity)))
                }
                pending.append(contentsOf: input.prefix(take))
                input = input.dropFirst(take)
            }
        }
    }

    /// Writes the final segment; returns the last encrypted bytes.
    public mutating func finish() -> [UInt8] {
        var out = [UInt8]()
        finish(into: &out)
        return out
    }

    /// Writes the final segment, appending the last encrypted bytes to `out`.
    public mutating func finish(into out: inout [UInt8]) {
        precondition(!finished, "EnvelopeSealer finished twice")
        takeHeader(into: &out)
        emit(final: true, into: &out)
        finished = true
    }

    private mutating func takeHeader(into out: inout [UInt8]) {
        guard !headerWritten else { return }
        headerWritten = true
        out += cipher.headerBytes
    }

    private mutating func emit(final: Bool, into out: inout [UInt8]) {
        pending.withUnsafeBytes { seal($0, final: final, into: &out) }
        pending.removeAll(keepingCapacity: true)
    }

    private mutating func seal(_ segment: UnsafeRawBufferPointer, final: Bool, into out: inout [UInt8]) {
        precondition(index < UInt32.max, "object exceeds 2^32 segments")
        cipher.seal(segment, index: index, final: final, into: &out)
        index += 1
    }

    /// Encrypts a whole object in memory.
    public static func seal(_ plaintext: some Collection<UInt8>, dek: SecretBytes, dekID: DEKID, account: String, object: String,
                            segmentSize: Int = EnvelopeHeader.defaultSegmentSize) throws(EnvelopeError) -> [UInt8] {
        var sealer = try EnvelopeSealer(dek: dek, dekID: dekID, account: account, object: object, segmentSize: segmentSize)
        var out = [UInt8]()
        out.reserveCapacity(sealer.header.encodedLength + SegmentCipher.sealedSize(plaintextCount: plaintext.count, segmentSize: segmentSize))
        sealer.update(plaintext, into: &out)
        sealer.finish(into: &out)
        return out
    }
}
