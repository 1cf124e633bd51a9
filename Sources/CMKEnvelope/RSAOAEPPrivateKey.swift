import CLibcrypto
import CMKCore
import Foundation

/// An RSA private key parsed once into the system's OpenSSL libcrypto, for RSA-OAEP-256 unwraps
/// (RSA-OAEP, SHA-256, MGF1-SHA-256, empty label).
///
/// Why libcrypto and not swift-crypto: the private operation is what every local-vault unwrap
/// costs, and the system's OpenSSL 3 runs it about 2.4× faster than swift-crypto's vendored
/// BoringSSL on CPUs with AVX-512 IFMA (docs/performance.md); it is also patched by the
/// distribution's security updates. Wrapping (the public operation), key generation and
/// AES-GCM stay on swift-crypto.
///
/// The parsed key (its primes, exponents and the Montgomery contexts OpenSSL caches beside them)
/// lives in ``SecretMemory``, which libcrypto allocates from (``Libcrypto/useSecretMemory()``), so
/// it is left out of core dumps and wiped when freed.
///
/// `@unchecked Sendable` is safe: the only stored state is an immutable pointer to an `EVP_PKEY`
/// that this object owns and frees in `deinit`, and its size. OpenSSL documents an `EVP_PKEY`
/// as safe to use from many threads at once as long as nothing modifies it; nothing does after
/// parsing. Each unwrap makes its own `EVP_PKEY_CTX` (contexts are not shareable), and the
/// RSA blinding state OpenSSL keeps inside the key is locked by OpenSSL itself.
public final class RSAOAEPPrivateKey: @unchecked Sendable {
    private let key: OpaquePointer
    /// The modulus size in bits (2048, 3072, 4096, ...).
    public let keySizeInBits: Int

    /// Parses a DER RSA private key: PKCS#1 `RSAPrivateKey` (what swift-crypto's
    /// `derRepresentation` produces) or PKCS#8 `PrivateKeyInfo`. The bytes are read in place,
    /// never copied by this type. Throws `.corrupt` if they are not exactly one RSA private key.
    public init(derRepresentation der: SecretBytes) throws(VaultError) {
        Libcrypto.useSecretMemory()
        let parsed = der.withUnsafeBytes { bytes -> OpaquePointer? in
            guard let base = bytes.baseAddress else { return nil }
            return cmk_rsa_private_key_parse(base.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        guard let parsed else {
            throw VaultError(.corrupt, "the RSA private key does not parse as DER PKCS#1 or PKCS#8")
        }
        key = parsed
        keySizeInBits = Int(cmk_rsa_private_key_bits(parsed))
    }

    deinit { cmk_rsa_private_key_free(key) }

    /// Decrypts an RSA-OAEP-256 wrapped DEK. The plaintext exists outside the returned
    /// `SecretBytes` only in a scratch buffer that is cleansed before this returns.
    public func unwrap(_ wrappedKey: Data) throws(VaultError) -> SecretBytes {
        let byteCount = keySizeInBits / 8
        guard wrappedKey.count == byteCount else {
            throw VaultError(.invalidInput, "wrapped key has \(wrappedKey.count) bytes; an RSA-\(keySizeInBits) wrapping has \(byteCount)")
        }
        let plain = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: byteCount) { scratch -> SecretBytes? in
            defer { OPENSSL_cleanse(scratch.baseAddress, byteCount) }
            var written = 0
            let decrypted = wrappedKey.withUnsafeBytes { input in
                cmk_rsa_oaep_sha256_decrypt(key, input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count,
                                            scratch.baseAddress, byteCount, &written)
            }
            guard decrypted == 1, written <= byteCount else { return nil }
            return SecretBytes(copying: UnsafeBufferPointer(rebasing: scratch[0..<written]))
        }
        guard let plain else {
            throw VaultError(.invalidInput, "RSA-OAEP-256 unwrap failed: the wrapped key was not made by this key version or was modified")
        }
        return plain
    }
}
