import Crypto
import Foundation

/// A SHA-256 hash in an RFC 9162 Merkle tree: a leaf hash, an interior node or a root.
///
/// The 32 bytes are held inline (no allocation), so a store can keep millions of them.
/// RFC 9162 §2.1.1 hashing: a leaf is `SHA-256(0x00 ‖ leaf)`, a node is
/// `SHA-256(0x01 ‖ left ‖ right)`, and the empty tree's root is `SHA-256("")`.
public struct MerkleHash: Hashable, Sendable, CustomStringConvertible {
    private var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    /// The number of bytes in a hash.
    public static let byteCount = 32

    /// A hash from exactly 32 bytes; nil for any other length.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        Swift.withUnsafeMutableBytes(of: &storage) { raw in
            for (offset, byte) in bytes.enumerated() { raw[offset] = byte }
        }
    }

    private init(digest: SHA256.Digest) {
        digest.withUnsafeBytes { source in
            Swift.withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) }
        }
    }

    /// A hash from its canonical padded standard base64 (RFC 4648 §4), as in checkpoints and
    /// proofs: exactly 44 characters that decode to 32 bytes and encode back to the same text.
    public init?(base64 text: some StringProtocol) {
        guard text.utf8.count == 44, let data = Data(base64Encoded: String(text)),
              data.base64EncodedString() == text, let hash = MerkleHash(bytes: data)
        else { return nil }
        self = hash
    }

    /// A hash from 64 lowercase or uppercase hex digits.
    public init?(hex text: some StringProtocol) {
        let digits = Array(text.utf8)
        guard digits.count == 2 * Self.byteCount else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(Self.byteCount)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        self.init(bytes: bytes)
    }

    /// The 32 bytes.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Canonical padded standard base64 (44 characters).
    public var base64: String { Data(bytes).base64EncodedString() }

    /// 64 lowercase hex digits.
    public var hex: String { bytes.map { String(format: "%02x", $0) }.joined() }

    public var description: String { hex }

    /// Calls `body` with the 32 bytes.
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try Swift.withUnsafeBytes(of: storage, body)
    }

    public static func == (lhs: MerkleHash, rhs: MerkleHash) -> Bool {
        lhs.storage.0 == rhs.storage.0 && lhs.storage.1 == rhs.storage.1
            && lhs.storage.2 == rhs.storage.2 && lhs.storage.3 == rhs.storage.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.0)
        hasher.combine(storage.1)
        hasher.combine(storage.2)
        hasher.combine(storage.3)
    }

    // MARK: RFC 9162 §2.1.1 hashing

    /// The root of the empty tree: `SHA-256("")`.
    public static let emptyTree = MerkleHash(digest: SHA256.hash(data: [UInt8]()))

    /// The hash of a leaf: `SHA-256(0x00 ‖ leaf)`.
    public static func leaf(_ leaf: some DataProtocol) -> MerkleHash {
        var hasher = SHA256()
        hasher.update(data: [0x00] as [UInt8])
        hasher.update(data: leaf)
        return MerkleHash(digest: hasher.finalize())
    }

    /// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
    public static func node(_ left: MerkleHash, _ right: MerkleHash) -> MerkleHash {
        withUnsafeTemporaryAllocation(byteCount: 1 + 2 * byteCount, alignment: 8) { block in
            block[0] = 0x01
            left.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: block[1...byteCount]).copyMemory(from: $0) }
            right.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: block[(byteCount + 1)...]).copyMemory(from: $0) }
            var hasher = SHA256()
            hasher.update(bufferPointer: UnsafeRawBufferPointer(block))
            return MerkleHash(digest: hasher.finalize())
        }
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
