import Crypto
import Foundation

/// Identifies one data encryption key: 16 random bytes, written as 32 lowercase hex digits.
public struct DEKID: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    /// The 16 raw bytes as they appear in object headers.
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(VaultError) {
        guard bytes.count == 16 else { throw VaultError(.invalidInput, "a DEK id has 16 bytes, not \(bytes.count)") }
        self.bytes = bytes
    }

    /// A fresh random id.
    public static func random() -> DEKID {
        var generator = SystemRandomNumberGenerator()
        return try! DEKID(bytes: (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// Parses 32 hex digits.
    public init(hex: String) throws(VaultError) {
        guard let bytes = Hex.decode(hex), bytes.count == 16 else {
            throw VaultError(.invalidInput, "'\(hex)' is not a DEK id (32 hex digits)")
        }
        self.bytes = bytes
    }

    public var description: String { Hex.encode(bytes) }

    public static func < (lhs: DEKID, rhs: DEKID) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(hex: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.reason))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Lowercase hexadecimal encoding.
public enum Hex {
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in bytes { out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 0x0F)]) }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }
}
