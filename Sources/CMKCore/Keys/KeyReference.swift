/// Names a root key in a vault. Names follow Azure Key Vault's rule: 1–127 characters of
/// `A-Z a-z 0-9 -`, which every provider can store.
public struct KeyReference: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The default root key name of the embedded setup.
    public static let defaultName = "data-at-rest-rsa2048"

    public let name: String

    /// Creates a reference after validating the name.
    public init(_ name: String) throws(VaultError) {
        guard Self.isValid(name) else {
            throw VaultError(.invalidInput, "key name '\(name)' is invalid: use 1-127 characters of A-Z, a-z, 0-9 and '-'")
        }
        self.name = name
    }

    /// Whether `name` is an acceptable key name.
    public static func isValid(_ name: String) -> Bool {
        guard (1...127).contains(name.utf8.count) else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D
        }
    }

    public var description: String { name }

    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(name) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.reason))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}
