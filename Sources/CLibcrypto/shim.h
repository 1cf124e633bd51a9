#ifndef CMK_CLIBCRYPTO_SHIM_H
#define CMK_CLIBCRYPTO_SHIM_H
// Only what cmk-syncer needs from the system's OpenSSL libcrypto: the RSA-OAEP-256 private
// operation of the local vault (docs/architecture.md, "Cryptography") and AES-256-GCM under its
// master key, both with their keys in memory that core dumps leave out (CMKCore's SecretMemory
// is libcrypto's allocator); the envelope's per-object HKDF and its random draw (getrandom).
// The envelope's segments use swift-crypto's BoringSSL directly (boringssl_aead.h, same module);
// everything else uses swift-crypto. These helpers keep OpenSSL's types and macros out of the Swift code, and leave
// OpenSSL's per-thread error queue empty after every failure so that nothing leaks between calls.
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

/// Parses an RSA private key from DER: PKCS#1 RSAPrivateKey or PKCS#8 PrivateKeyInfo, the whole
/// buffer and nothing after it. NULL if the bytes are not exactly one RSA private key.
static inline EVP_PKEY *cmk_rsa_private_key_parse(const unsigned char *der, size_t length) {
    if (der == NULL || length == 0 || length > 1u << 20) return NULL;
    const unsigned char *cursor = der;
    EVP_PKEY *key = d2i_AutoPrivateKey(NULL, &cursor, (long)length);
    if (key == NULL || cursor != der + length || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        EVP_PKEY_free(key);
        ERR_clear_error();
        return NULL;
    }
    return key;
}

/// The modulus size of a parsed key in bits.
static inline int cmk_rsa_private_key_bits(const EVP_PKEY *key) { return EVP_PKEY_get_bits(key); }

static inline void cmk_rsa_private_key_free(EVP_PKEY *key) { EVP_PKEY_free(key); }

/// RSA-OAEP decryption with SHA-256, MGF1-SHA-256 and the empty label, with a context of its own
/// (an EVP_PKEY_CTX is not safe to share between threads; the EVP_PKEY is, for private-key
/// operations). Writes at most `capacity` bytes to `out` and their count to `*written`.
/// Returns 1 on success, 0 on any failure (bad padding, wrong key, bad length), with the error
/// queue cleared.
static inline int cmk_rsa_oaep_sha256_decrypt(EVP_PKEY *key, const unsigned char *in, size_t length,
                                              unsigned char *out, size_t capacity, size_t *written) {
    *written = 0;
    EVP_PKEY_CTX *context = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    size_t produced = capacity;
    int ok = context != NULL
        && EVP_PKEY_decrypt_init(context) == 1
        && EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_OAEP_PADDING) == 1
        && EVP_PKEY_CTX_set_rsa_oaep_md(context, EVP_sha256()) == 1
        && EVP_PKEY_CTX_set_rsa_mgf1_md(context, EVP_sha256()) == 1
        && EVP_PKEY_decrypt(context, out, &produced, in, length) == 1;
    EVP_PKEY_CTX_free(context);
    if (!ok) {
        ERR_clear_error();
        return 0;
    }
    *written = produced;
    return 1;
}

/// AES-256-GCM with a 12-byte nonce and a 16-byte tag: the local vault's sealing under its master
/// key. The cipher context (with the key schedule) is libcrypto's, allocated in secret memory and
/// cleansed when freed; swift-crypto would leave its schedule in the ordinary heap. `encrypt` 1
/// seals `in` into `out` and writes `tag`; `encrypt` 0 opens `in` into `out` and checks `tag`.
/// `out` has room for `length` bytes. Returns 1 on success, 0 on any failure (a wrong key or tag,
/// modified data), with the error queue cleared.
static inline int cmk_aes256gcm(int encrypt, const unsigned char *key, const unsigned char *nonce,
                                const unsigned char *aad, size_t aad_length,
                                const unsigned char *in, size_t length, unsigned char *out, unsigned char *tag) {
    if (length > INT32_MAX || aad_length > INT32_MAX) return 0;
    EVP_CIPHER_CTX *context = EVP_CIPHER_CTX_new();
    int produced = 0, final = 0;
    int ok = context != NULL
        && EVP_CipherInit_ex(context, EVP_aes_256_gcm(), NULL, key, nonce, encrypt) == 1
        && (aad_length == 0 || EVP_CipherUpdate(context, NULL, &produced, aad, (int)aad_length) == 1)
        && (encrypt || EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1)
        && (length == 0 || EVP_CipherUpdate(context, out, &produced, in, (int)length) == 1)
        && EVP_CipherFinal_ex(context, out + produced, &final) == 1
        && (!encrypt || EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1);
    EVP_CIPHER_CTX_free(context);
    if (!ok) {
        ERR_clear_error();
        return 0;
    }
    return 1;
}

/// Fills `out` with `length` bytes from the kernel's CSPRNG (getrandom(2), which the Swift Glibc
/// module does not import), in one system call for the envelope's 39 bytes per object: Swift's
/// SystemRandomNumberGenerator makes one per 8 bytes. Blocks only before the pool is seeded
/// at boot. Returns 1, or 0 if the kernel refuses (no getrandom: seccomp, Linux < 3.17).
static inline int cmk_random_bytes(unsigned char *out, size_t length) {
    while (length > 0) {
        ssize_t got = getrandom(out, length, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return 0;
        }
        out += got;
        length -= (size_t)got;
    }
    return 1;
}

/// HKDF-SHA-256 (RFC 5869) for keys of at most one hash: `out_length` ≤ 32, a salt of at most
/// 64 bytes (one HMAC block; the envelope's is 32), and one expand step. The envelope derives a
/// key per object with it (docs/envelope-format.md); libcrypto's EVP_KDF fetches the algorithm
/// and allocates its contexts on every call (about 2 µs), swift-crypto's generic HKDF took 5 µs;
/// this runs the 8 SHA-256 blocks it needs in about 0.3 µs. Every intermediate (the padded keys,
/// the pseudorandom key, the hash states) is on this stack frame and cleansed before returning.
/// Returns 1, or 0 for lengths outside those bounds.
static inline int cmk_hkdf_sha256(const unsigned char *ikm, size_t ikm_length, const unsigned char *salt, size_t salt_length,
                                  const unsigned char *info, size_t info_length, unsigned char *out, size_t out_length) {
    if (out_length == 0 || out_length > 32 || salt_length > 64) return 0;
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
    // SHA256_Init/Update/Final: deprecated in OpenSSL 3 for EVP, but free of its per-call
    // provider look-ups, and the same SHA-NI block function underneath.
    unsigned char pad[64], prk[32], inner[32], counter = 1;
    SHA256_CTX state;
    // PRK = HMAC(key = salt, ikm)
    memset(pad, 0x36, sizeof pad);
    for (size_t i = 0; i < salt_length; i++) pad[i] ^= salt[i];
    SHA256_Init(&state); SHA256_Update(&state, pad, 64); SHA256_Update(&state, ikm, ikm_length); SHA256_Final(inner, &state);
    for (size_t i = 0; i < 64; i++) pad[i] ^= 0x36 ^ 0x5c;
    SHA256_Init(&state); SHA256_Update(&state, pad, 64); SHA256_Update(&state, inner, 32); SHA256_Final(prk, &state);
    // T(1) = HMAC(key = PRK, info || 0x01)
    memset(pad, 0x36, sizeof pad);
    for (size_t i = 0; i < 32; i++) pad[i] ^= prk[i];
    SHA256_Init(&state); SHA256_Update(&state, pad, 64); SHA256_Update(&state, info, info_length); SHA256_Update(&state, &counter, 1);
    SHA256_Final(inner, &state);
    for (size_t i = 0; i < 64; i++) pad[i] ^= 0x36 ^ 0x5c;
    SHA256_Init(&state); SHA256_Update(&state, pad, 64); SHA256_Update(&state, inner, 32); SHA256_Final(prk, &state);
#pragma clang diagnostic pop
    memcpy(out, prk, out_length);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(prk, sizeof prk);
    OPENSSL_cleanse(inner, sizeof inner);
    OPENSSL_cleanse(&state, sizeof state);
    return 1;
}

#endif
