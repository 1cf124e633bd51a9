#ifndef CMK_CLIBCRYPTO_SHIM_H
#define CMK_CLIBCRYPTO_SHIM_H
// Only what cmk-syncer needs from the system's OpenSSL libcrypto: the RSA-OAEP-256 private
// operation of the local vault (docs/architecture.md, "Cryptography") and AES-256-GCM under its
// master key, both with their keys in memory that core dumps leave out (CMKCore's SecretMemory
// is libcrypto's allocator). Everything else uses swift-crypto. These helpers keep OpenSSL's types and macros out of the Swift code, and leave
// OpenSSL's per-thread error queue empty after every failure so that nothing leaks between calls.
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
