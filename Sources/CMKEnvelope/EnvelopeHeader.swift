import CMKCore
import Foundation

/// The header of an encrypted object, format version 1 (docs/envelope-format.md).
public struct EnvelopeHeader: Hashable, Sendable {
    /// `CMKE`.
    public static let magic: [UInt8] = [0x43, 0x4D, 0x4B, 0x45]
    public static let formatVersion: UInt8 = 1
    /// Suite 1: AES-256-GCM segments under an HKDF-SHA-256 per-object key.
    public static let suite: UInt8 = 1
    /// The fixed part before the account id.
    static let fixedLength = 69
    public static let defaultSegmentSize = 65_536
    public static let segmentSizeRange = 16...(16 * 1_048_576)
    static let maxIDLength = 1_024

    public var dekID: DEKID
    public var account: String
    public var object: String
    /// Plaintext bytes per non-final segment.
    public var segmentSize: Int
    /// 32 random bytes per object; the HKDF salt of the object key.
    public var salt: [UInt8]
    /// 7 random bytes per object; the first 7 bytes of every segment nonce.
    public var noncePrefix: [UInt8]

    public init(dekID: DEKID, account: String, object: String, segmentSize: Int, salt: [UInt8], noncePrefix: [UInt8]) throws(EnvelopeError) {
        guard Self.segmentSizeRange.contains(segmentSize) else {
            throw EnvelopeError(.invalidParameter, "segment size \(segmentSize) is outside \(Self.segmentSizeRange)")
        }
        guard (1...Self.maxIDLength).contains(account.utf8.count), (1...Self.maxIDLength).contains(object.utf8.count) else {
            throw EnvelopeError(.invalidParameter, "account and object ids must have 1-\(Self.maxIDLength) UTF-8 bytes")
        }
        guard salt.count == 32, noncePrefix.count == 7 else {
            throw EnvelopeError(.invalidParameter, "salt has 32 bytes and nonce prefix 7")
        }
        self.dekID = dekID
        self.account = account
        self.object = object
        self.segmentSize = segmentSize
        self.salt = salt
        self.noncePrefix = noncePrefix
    }

    /// The first 8 bytes of the salt, repeated in every segment frame to recognise foreign segments.
    var objectTag: [UInt8] { Array(salt[0..<8]) }

    /// The length of ``encoded()``.
    public var encodedLength: Int { Self.fixedLength + account.utf8.count + 2 + object.utf8.count }

    /// The encoded header.
    public func encoded() -> [UInt8] { encoded(reserving: 0) }

    /// The encoded header in an array with room for `extra` more bytes (the segment cipher's
    /// associated data appends a frame header). Written in place: one allocation per object.
    func encoded(reserving extra: Int) -> [UInt8] {
        var account = self.account, object = self.object
        return account.withUTF8 { accountBytes in
            object.withUTF8 { objectBytes in
                let total = Self.fixedLength + accountBytes.count + 2 + objectBytes.count
                var out = [UInt8](unsafeUninitializedCapacity: total + extra) { buffer, count in
                    var at = 0
                    func put(_ bytes: UnsafeBufferPointer<UInt8>) {
                        _ = UnsafeMutableBufferPointer(rebasing: buffer[at..<(at + bytes.count)]).initialize(from: bytes)
                        at += bytes.count
                    }
                    func put(_ value: Int, bytes: Int) {
                        for shift in stride(from: 8 * (bytes - 1), through: 0, by: -8) {
                            buffer[at] = UInt8(truncatingIfNeeded: value >> shift)
                            at += 1
                        }
                    }
                    Self.magic.withUnsafeBufferPointer(put)
                    buffer[at] = Self.formatVersion
                    buffer[at + 1] = Self.suite
                    at += 2
                    put(total, bytes: 2)
                    put(segmentSize, bytes: 4)
                    dekID.bytes.withUnsafeBufferPointer(put)
                    salt.withUnsafeBufferPointer(put)
                    noncePrefix.withUnsafeBufferPointer(put)
                    put(accountBytes.count, bytes: 2)
                    put(accountBytes)
                    put(objectBytes.count, bytes: 2)
                    put(objectBytes)
                    count = at
                }
                precondition(out.count == total)
                return out
            }
        }
    }

    /// Parses a header from the start of `bytes`. Returns nil when more bytes are needed.
    /// - Returns: the header and its encoded length.
    public static func parse(_ bytes: some RandomAccessCollection<UInt8>) throws(EnvelopeError) -> (header: EnvelopeHeader, length: Int)? {
        let b = Array(bytes.prefix(8 + 2 * maxIDLength + fixedLength))
        // Refused as soon as the bytes differ from the magic, even before 4 have arrived; input
        // that matches so far needs more bytes (at the end of input: ``truncation(byteCount:)``).
        guard b.prefix(magic.count).elementsEqual(magic.prefix(min(b.count, magic.count))) else {
            throw EnvelopeError(.notAnEnvelope, "the object does not start with the envelope magic 'CMKE'")
        }
        guard b.count >= 8 else { return nil }
        guard b[4] == formatVersion else {
            throw EnvelopeError(.unsupportedVersion, "format version \(b[4]) is not supported (this build reads version \(formatVersion))")
        }
        guard b[5] == suite else {
            throw EnvelopeError(.unsupportedSuite, "cipher suite \(b[5]) is not supported (this build reads suite \(suite))")
        }
        let total = Int(b.readBigEndianUInt16(at: 6))
        guard total >= fixedLength + 2 + 2, total <= fixedLength + 2 + 2 * maxIDLength else {
            throw EnvelopeError(.malformedHeader, "header length \(total) is out of range")
        }
        guard b.count >= total else { return nil }
        let segmentSize = Int(b.readBigEndianUInt32(at: 8))
        guard segmentSizeRange.contains(segmentSize) else {
            throw EnvelopeError(.segmentSizeOutOfRange, "segment size \(segmentSize) is outside \(segmentSizeRange.lowerBound)...\(segmentSizeRange.upperBound)")
        }
        let dekID = try! DEKID(bytes: Array(b[12..<28]))
        let salt = Array(b[28..<60])
        let noncePrefix = Array(b[60..<67])
        let accountLength = Int(b.readBigEndianUInt16(at: 67))
        let objectLengthOffset = fixedLength + accountLength
        guard objectLengthOffset + 2 <= total else {
            throw EnvelopeError(.malformedHeader, "account id length \(accountLength) overruns the header")
        }
        let objectLength = Int(b.readBigEndianUInt16(at: objectLengthOffset))
        guard objectLengthOffset + 2 + objectLength == total else {
            throw EnvelopeError(.malformedHeader, "id lengths (\(accountLength), \(objectLength)) do not add up to header length \(total)")
        }
        guard let account = String(validating: b[fixedLength..<objectLengthOffset], as: UTF8.self),
              let object = String(validating: b[(objectLengthOffset + 2)..<total], as: UTF8.self)
        else {
            throw EnvelopeError(.malformedHeader, "account or object id is not valid UTF-8")
        }
        do {
            let header = try EnvelopeHeader(dekID: dekID, account: account, object: object, segmentSize: segmentSize, salt: salt, noncePrefix: noncePrefix)
            return (header, total)
        } catch {
            throw EnvelopeError(.malformedHeader, error.reason)
        }
    }
}

extension EnvelopeHeader {
    /// The error for input that ends before its header is complete: `byteCount` bytes, which
    /// ``parse(_:)`` accepted as far as they go.
    public static func truncation(byteCount: Int) -> EnvelopeError {
        if byteCount < magic.count {
            return EnvelopeError(.truncated, "object of \(byteCount) bytes ends inside the \(magic.count)-byte envelope magic")
        }
        return EnvelopeError(.truncated, "object ends inside its header (\(byteCount) bytes)")
    }
}

extension Array where Element == UInt8 {
    func readBigEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) << 8 | UInt16(self[offset + 1])
    }

    func readBigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) << 24 | UInt32(self[offset + 1]) << 16 | UInt32(self[offset + 2]) << 8 | UInt32(self[offset + 3])
    }
}
