import CMKCore
import Foundation

/// Decrypts one object as a stream, holding at most one segment in memory, and refuses
/// anything that is not exactly what was sealed: see ``EnvelopeError/Code``.
///
/// Give it the bytes that follow the header (``EnvelopeHeader/parse(_:)`` reads the header, so the
/// caller can fetch the DEK it names), then call ``feed(_:)`` with each chunk and ``finish()`` at the end.
/// Plaintext returned by `feed` is authentic segment by segment; the object as a whole is
/// complete only once `finish()` returns without error.
public struct EnvelopeOpener: Sendable {
    private var cipher: SegmentCipher
    /// The start of a segment split across chunks.
    private var buffer: [UInt8] = []
    private var index: UInt32 = 0
    private var sawFinal = false

    /// Checks that the header belongs to `account`/`object` and names `dekID`.
    public init(header: EnvelopeHeader, account: String, object: String, dek: SecretBytes, dekID: DEKID) throws(EnvelopeError) {
        guard header.account == account else {
            throw EnvelopeError(.wrongAccount, "object belongs to account '\(header.account)', not '\(account)'")
        }
        guard header.object == object else {
            throw EnvelopeError(.wrongObject, "object was written as '\(header.object)', not '\(object)'")
        }
        guard header.dekID == dekID else {
            throw EnvelopeError(.wrongDEK, "object is encrypted under DEK \(header.dekID), not \(dekID)")
        }
        cipher = try SegmentCipher(header: header, dek: dek)
    }

    /// Adds encrypted bytes; returns the plaintext of every segment completed by them.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(EnvelopeError) -> [UInt8] {
        var out = [UInt8]()
        try feed(bytes, into: &out)
        return out
    }

    /// Adds encrypted bytes, appending the plaintext of every segment completed by them to `out`.
    /// Segments that arrive whole in a contiguous chunk are decrypted where they lie; only a
    /// segment split across chunks is gathered in the buffer, one copy of its bytes.
    public mutating func feed(_ bytes: some Collection<UInt8>, into out: inout [UInt8]) throws(EnvelopeError) {
        if sawFinal, !bytes.isEmpty {
            throw EnvelopeError(.trailingData, "\(bytes.count) bytes follow the final segment \(index - 1)")
        }
        try SegmentCipher.withBytes(bytes) { (raw) throws(EnvelopeError) in
            var position = 0
            // First complete the segment left over from the previous chunk, taking only its missing bytes.
            while !buffer.isEmpty, position < raw.count {
                let take = Swift.min(missingBytes(), raw.count - position)
                buffer.append(contentsOf: raw[position..<(position + take)])
                position += take
                let pending = buffer
                if try SegmentCipher.withBytes(pending, { (gathered) throws(EnvelopeError) in try nextSegment(in: gathered, at: 0, into: &out) }) != nil {
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            guard buffer.isEmpty else { return }
            while let length = try nextSegment(in: raw, at: position, into: &out) { position += length }
            if position < raw.count { buffer.append(contentsOf: raw[position...]) }
        }
    }

    /// Bytes still missing from the segment in the buffer (at least 1).
    private func missingBytes() -> Int {
        guard buffer.count >= SegmentCipher.frameHeaderLength else { return SegmentCipher.frameHeaderLength - buffer.count }
        let length = Int(buffer.readBigEndianUInt32(at: 5))
        // An impossible length is refused by nextSegment; one more byte gets it there.
        guard length <= cipher.header.segmentSize else { return 1 }
        return Swift.max(1, SegmentCipher.frameHeaderLength + length + SegmentCipher.tagLength - buffer.count)
    }

    /// Checks that the object ended exactly after its final segment.
    public func finish() throws(EnvelopeError) {
        guard sawFinal else {
            let pending = buffer.count
            guard index > 0 else {
                throw EnvelopeError(.truncated, "object ends before its first segment is complete (\(pending) bytes of segment 0 after the header)")
            }
            throw EnvelopeError(.truncated, "object ends after segment \(index - 1) without a final segment (\(pending) bytes of an incomplete segment)")
        }
    }

    /// Decrypts the segment at `start` of `data` if it is complete; returns its encoded length.
    private mutating func nextSegment(in data: UnsafeRawBufferPointer, at start: Int, into out: inout [UInt8]) throws(EnvelopeError) -> Int? {
        let available = data.count - start
        guard !sawFinal else {
            if available > 0 { throw EnvelopeError(.trailingData, "\(available) bytes follow the final segment \(index - 1)") }
            return nil
        }
        guard available >= SegmentCipher.frameHeaderLength else { return nil }
        let frame = UnsafeRawBufferPointer(rebasing: data[start..<(start + SegmentCipher.frameHeaderLength)])
        let foundIndex = UInt32(frame[0]) << 24 | UInt32(frame[1]) << 16 | UInt32(frame[2]) << 8 | UInt32(frame[3])
        let flags = frame[4]
        let length = Int(UInt32(frame[5]) << 24 | UInt32(frame[6]) << 16 | UInt32(frame[7]) << 8 | UInt32(frame[8]))
        guard frame[9..<17].elementsEqual(cipher.objectTag) else {
            throw EnvelopeError(.foreignSegment, "segment at position \(index) belongs to another object")
        }
        guard foundIndex == index else {
            throw EnvelopeError(.segmentOutOfOrder, "segment \(foundIndex) found at position \(index): segments were reordered, duplicated or removed")
        }
        guard flags & ~SegmentCipher.finalFlag == 0 else {
            throw EnvelopeError(.malformedSegment, "segment \(index) has unknown flags \(flags)")
        }
        let final = flags == SegmentCipher.finalFlag
        let size = cipher.header.segmentSize
        guard length <= size, final || length == size, length > 0 || index == 0 else {
            throw EnvelopeError(.malformedSegment, "segment \(index) declares \(length) bytes; segments hold \(size) bytes, the final one 1-\(size)")
        }
        let total = SegmentCipher.frameHeaderLength + length + SegmentCipher.tagLength
        guard available >= total else { return nil }
        let body = start + SegmentCipher.frameHeaderLength
        try cipher.open(ciphertext: UnsafeRawBufferPointer(rebasing: data[body..<(body + length)]),
                        tag: UnsafeRawBufferPointer(rebasing: data[(body + length)..<(body + length + SegmentCipher.tagLength)]),
                        index: index, final: final, into: &out)
        index += 1
        sawFinal = final
        return total
    }

    /// Decrypts a whole object in memory. `dek` is asked for the DEK named in the header.
    public static func open(_ object: some Collection<UInt8>, account: String, objectID: String,
                            dek: (DEKID) throws -> SecretBytes) throws -> [UInt8] {
        func open(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
            guard let (header, length) = try EnvelopeHeader.parse(bytes) else {
                throw EnvelopeHeader.truncation(byteCount: bytes.count)
            }
            var opener = try EnvelopeOpener(header: header, account: account, object: objectID, dek: try dek(header.dekID), dekID: header.dekID)
            var plaintext = [UInt8]()
            plaintext.reserveCapacity(bytes.count - length)
            try opener.feed(UnsafeRawBufferPointer(rebasing: bytes[length...]), into: &plaintext)
            try opener.finish()
            return plaintext
        }
        if let plaintext = try object.withContiguousStorageIfAvailable({ try open(UnsafeRawBufferPointer($0)) }) { return plaintext }
        return try Array(object).withUnsafeBytes(open)
    }
}
