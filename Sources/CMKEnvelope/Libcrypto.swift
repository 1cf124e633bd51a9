import CLibcrypto
import CMKCore
import Crypto
import Foundation

/// What cmk-syncer asks of the system's OpenSSL libcrypto beyond RSA (``RSAOAEPPrivateKey``): that
/// it allocate in ``SecretMemory``, and AES-256-GCM under the local vault's master key.
public enum Libcrypto {
    /// Makes ``SecretMemory`` libcrypto's allocator, so the parsed RSA private keys (their primes,
    /// exponents and Montgomery contexts) and every cipher context stay out of core dumps and are
    /// wiped when freed. libcrypto accepts this only before its first allocation: call it first in
    /// `main`; ``RSAOAEPPrivateKey`` and the AES-GCM functions call it too.
    /// True when libcrypto allocates in secret memory.
    @discardableResult
    public static func useSecretMemory() -> Bool { secretMemory }

    private static let secretMemory: Bool = {
        CRYPTO_set_mem_functions(
            { size, _, _ in SecretMemory.allocate(size) },
            { pointer, size, _, _ in SecretMemory.reallocate(pointer, size) },
            { pointer, _, _ in SecretMemory.free(pointer) }) == 1
    }()

    /// A sealed box: 12-byte nonce, ciphertext as long as the plaintext, 16-byte tag.
    public struct SealedBox: Sendable, Equatable {
        public var nonce: Data
        public var ciphertext: Data
        public var tag: Data

        public init(nonce: Data, ciphertext: Data, tag: Data) {
            self.nonce = nonce
            self.ciphertext = ciphertext
            self.tag = tag
        }
    }

    /// Seals `plaintext` with AES-256-GCM under `key` (32 bytes) and a fresh random nonce; nil if
    /// libcrypto fails.
    public static func sealAES256GCM(_ plaintext: SecretBytes, key: SecretBytes, authenticating aad: Data) -> SealedBox? {
        let nonce = Data(AES.GCM.Nonce())
        var ciphertext = Data(count: Swift.max(plaintext.count, 1))
        var tag = Data(count: 16)
        let ok = plaintext.withUnsafeBytes { input in
            ciphertext.withUnsafeMutableBytes { output in
                tag.withUnsafeMutableBytes { aes256GCM(seal: true, key: key, nonce: nonce, aad: aad, input: input, output: output, tag: $0) }
            }
        }
        return ok ? SealedBox(nonce: nonce, ciphertext: ciphertext.prefix(plaintext.count), tag: tag) : nil
    }

    /// Opens a box from ``sealAES256GCM(_:key:authenticating:)`` straight into secret memory; nil
    /// if the key, the nonce, the tag, the data or `aad` do not match.
    public static func openAES256GCM(_ box: SealedBox, key: SecretBytes, authenticating aad: Data) -> SecretBytes? {
        guard box.tag.count == 16 else { return nil }
        struct Refused: Error {}
        var tag = box.tag  // libcrypto only reads it when opening
        return try? SecretBytes(count: box.ciphertext.count) { output in
            let ok = box.ciphertext.withUnsafeBytes { input in
                tag.withUnsafeMutableBytes { aes256GCM(seal: false, key: key, nonce: box.nonce, aad: aad, input: input, output: output, tag: $0) }
            }
            guard ok else { throw Refused() }
        }
    }

    private static func aes256GCM(seal: Bool, key: SecretBytes, nonce: Data, aad: Data, input: UnsafeRawBufferPointer,
                                  output: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawBufferPointer) -> Bool {
        useSecretMemory()
        guard key.count == 32, nonce.count == 12, tag.count == 16 else { return false }
        return key.withUnsafeBytes { keyBytes in
            nonce.withUnsafeBytes { nonceBytes in
                aad.withUnsafeBytes { aadBytes in
                    cmk_aes256gcm(seal ? 1 : 0, keyBytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                  nonceBytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                  aadBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), aadBytes.count,
                                  input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count,
                                  output.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                  tag.baseAddress?.assumingMemoryBound(to: UInt8.self)) == 1
                }
            }
        }
    }
}
