import Foundation

/// The public half of a key version, enough to wrap a DEK without calling the vault.
public enum PublicKeyMaterial: Hashable, Sendable, Codable {
    /// An RSA public key as big-endian unsigned modulus and exponent (the JWK `n` and `e`).
    case rsa(modulus: Data, exponent: Data)

    /// The key size in bits (leading zero bytes of the modulus are not counted).
    public var bitCount: Int {
        switch self {
        case .rsa(let modulus, _):
            guard let first = modulus.firstIndex(where: { $0 != 0 }) else { return 0 }
            let significant = modulus[first...]
            return (significant.count - 1) * 8 + (8 - significant.first!.leadingZeroBitCount)
        }
    }
}

/// The RSA key sizes a root key may have (SPEC §2).
public enum RSAKeySize: Int, Hashable, Sendable, Codable, CaseIterable {
    case bits2048 = 2048
    case bits3072 = 3072
    case bits4096 = 4096
}
