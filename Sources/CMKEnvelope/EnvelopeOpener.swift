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
    private let cipher: SegmentCipher
    private var buffer: [UInt8] = []
    private var offset = 0
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
        if sawFinal, !bytes.isEmpty {
            throw EnvelopeError(.trailingData, "\(bytes.count) bytes follow the final segment \(index - 1)")
        }
        buffer.append(contentsOf: bytes)
        var out = [UInt8]()
        while let plaintext = try nextSegment() {
            out += plaintext
        }
        if offset > 0, offset >= buffer.count / 2 {
            buffer.removeFirst(offset)
            offset = 0
        }
        return out
    }

    /// Checks that the object ended exactly after its final segment.
    public func finish() throws(EnvelopeError) {
        guard sawFinal else {
            let pending = buffer.count - offset
            throw EnvelopeError(.truncated, "object ends after segment \(Int(index) - 1) without a final segment (\(pending) bytes of an incomplete segment)")
        }
    }

    private mutating func nextSegment() throws(EnvelopeError) -> [UInt8]? {
        let available = buffer.count - offset
        guard !sawFinal else {
            if available > 0 { throw EnvelopeError(.trailingData, "\(available) bytes follow the final segment \(index - 1)") }
            return nil
        }
        guard available >= SegmentCipher.frameHeaderLength else { return nil }
        let frame = buffer[offset..<(offset + SegmentCipher.frameHeaderLength)]
        let frameArray = Array(frame)
        let foundIndex = frameArray.readBigEndianUInt32(at: 0)
        let flags = frameArray[4]
        let length = Int(frameArray.readBigEndianUInt32(at: 5))
        let tag = Array(frameArray[9..<17])
        guard tag == cipher.header.objectTag else {
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
        let start = offset + SegmentCipher.frameHeaderLength
        let plaintext = try cipher.open(
            ciphertext: buffer[start..<(start + length)],
            tag: buffer[(start + length)..<(start + length + SegmentCipher.tagLength)],
            frame: frame, index: index, final: final)
        offset += total
        index += 1
        sawFinal = final
        return plaintext
    }

    /// Decrypts a whole object in memory. `dek` is asked for the DEK named in the header.
    public static func open(_ object: some Collection<UInt8>, account: String, objectID: String,
                            dek: (DEKID) throws -> SecretBytes) throws -> [UInt8] {
        let bytes = Array(object)
        guard let (header, length) = try EnvelopeHeader.parse(bytes) else {
            throw EnvelopeError(.truncated, "object ends inside its header (\(bytes.count) bytes)")
        }
        var opener = try EnvelopeOpener(header: header, account: account, object: objectID, dek: try dek(header.dekID), dekID: header.dekID)
        let plaintext = try opener.feed(bytes[length...])
        try opener.finish()
        return plaintext
    }
}
