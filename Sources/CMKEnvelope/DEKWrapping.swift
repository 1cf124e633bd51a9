import CMKCore
import Crypto
import CryptoExtras
import Foundation

/// DEK generation and RSA-OAEP-256 wrapping (RSA-OAEP, SHA-256, MGF1-SHA-256, empty label).
/// Generation and wrapping (the public operation) go through swift-crypto; unwrapping (the
/// private operation) through the system's OpenSSL libcrypto (``RSAOAEPPrivateKey``).
public enum DEKWrapping {
    /// The size of every DEK in bytes (AES-256).
    public static let dekByteCount = 32

    /// A fresh random 256-bit DEK.
    public static func generateDEK() -> SecretBytes { SecretBytes.random(count: dekByteCount) }

    /// Wraps a DEK with an RSA public key (what a vault's `wrapkey` with `RSA-OAEP-256` does).
    public static func wrap(_ dek: SecretBytes, with publicKey: PublicKeyMaterial) throws -> Data {
        let key = try rsaPublicKey(publicKey)
        return try dek.withUnsafeBytes { bytes in
            do {
                return try key.encrypt(bytes, padding: .PKCS1_OAEP_SHA256)
            } catch {
                throw VaultError(.invalidInput, "RSA-OAEP-256 wrap failed", underlying: error)
            }
        }
    }

    /// Unwraps a DEK with an RSA private key (DER, PKCS#1 or PKCS#8), parsed for this call only.
    /// Only vault providers call this; the local vault keeps its parsed ``RSAOAEPPrivateKey``.
    public static func unwrap(_ wrappedKey: Data, with privateKeyDER: SecretBytes) throws -> SecretBytes {
        let key: RSAOAEPPrivateKey
        do {
            key = try RSAOAEPPrivateKey(derRepresentation: privateKeyDER)
        } catch {
            throw VaultError(.corrupt, "stored RSA private key does not parse", underlying: error)
        }
        return try key.unwrap(wrappedKey)
    }

    /// The swift-crypto public key for public key material.
    public static func rsaPublicKey(_ material: PublicKeyMaterial) throws -> _RSA.Encryption.PublicKey {
        switch material {
        case .rsa(let modulus, let exponent):
            do {
                return try _RSA.Encryption.PublicKey(n: modulus, e: exponent)
            } catch {
                throw VaultError(.invalidInput, "RSA public key (n, e) is not usable", underlying: error)
            }
        }
    }

    /// The public key material of an RSA public key.
    public static func material(of key: _RSA.Encryption.PublicKey) throws -> PublicKeyMaterial {
        let primitives = try key.getKeyPrimitives()
        return .rsa(modulus: primitives.modulus, exponent: primitives.publicExponent)
    }
}
