#ifndef CMK_BORINGSSL_AEAD_H
#define CMK_BORINGSSL_AEAD_H
// AES-256-GCM for the envelope's segments through BoringSSL's EVP_AEAD, the AEAD interface of the
// BoringSSL that swift-crypto builds into every binary that links its Crypto product (the target
// CCryptoBoringSSL, whose symbols swift-crypto prefixes with "CCryptoBoringSSL_"). swift-crypto does
// not export that target as a product, so these are the few declarations we call, copied from its
// include/CCryptoBoringSSL_aead.h with the types made opaque; swift-crypto is pinned in
// Package.resolved, and a renamed symbol fails the link, not a run. Why not swift-crypto's AES.GCM:
// it sets up a fresh AEAD context on every call and returns its output in buffers of its own (about
// 1.4 µs a call, three times the GCM work of a 4 KiB segment); why not the system's OpenSSL 3.0: it
// has no VAES/AVX-512 GCM code, and runs 1 MiB at less than half this speed (docs/performance.md,
// "Small objects"). The key schedule lives in BoringSSL's heap, which it wipes on free.
#include <stddef.h>
#include <stdint.h>

typedef struct cmk_boringssl_aead cmk_boringssl_aead;
typedef struct cmk_boringssl_aead_ctx cmk_boringssl_aead_ctx;

const cmk_boringssl_aead *CCryptoBoringSSL_EVP_aead_aes_256_gcm(void);
cmk_boringssl_aead_ctx *CCryptoBoringSSL_EVP_AEAD_CTX_new(const cmk_boringssl_aead *aead, const uint8_t *key, size_t key_len,
                                                          size_t tag_len);
void CCryptoBoringSSL_EVP_AEAD_CTX_free(cmk_boringssl_aead_ctx *ctx);
int CCryptoBoringSSL_EVP_AEAD_CTX_seal_scatter(const cmk_boringssl_aead_ctx *ctx, uint8_t *out, uint8_t *out_tag,
                                               size_t *out_tag_len, size_t max_out_tag_len, const uint8_t *nonce,
                                               size_t nonce_len, const uint8_t *in, size_t in_len, const uint8_t *extra_in,
                                               size_t extra_in_len, const uint8_t *ad, size_t ad_len);
int CCryptoBoringSSL_EVP_AEAD_CTX_open_gather(const cmk_boringssl_aead_ctx *ctx, uint8_t *out, const uint8_t *nonce,
                                              size_t nonce_len, const uint8_t *in, size_t in_len, const uint8_t *in_tag,
                                              size_t in_tag_len, const uint8_t *ad, size_t ad_len);
void CCryptoBoringSSL_ERR_clear_error(void);

/// An AES-256-GCM context keyed once with a 32-byte key and a 16-byte tag; NULL if BoringSSL refuses.
static inline cmk_boringssl_aead_ctx *cmk_gcm_new(const uint8_t *key) {
    cmk_boringssl_aead_ctx *ctx = CCryptoBoringSSL_EVP_AEAD_CTX_new(CCryptoBoringSSL_EVP_aead_aes_256_gcm(), key, 32, 16);
    if (ctx == NULL) CCryptoBoringSSL_ERR_clear_error();
    return ctx;
}

static inline void cmk_gcm_free(cmk_boringssl_aead_ctx *ctx) { CCryptoBoringSSL_EVP_AEAD_CTX_free(ctx); }

/// Seals `length` bytes of `in` into `out` (which may be `in` itself) under a 12-byte nonce,
/// authenticating `ad`, and writes the 16-byte tag to `tag`. Returns 1, or 0 with the error queue cleared.
static inline int cmk_gcm_seal(const cmk_boringssl_aead_ctx *ctx, const uint8_t *nonce, const uint8_t *ad, size_t ad_length,
                               const uint8_t *in, size_t length, uint8_t *out, uint8_t *tag) {
    size_t tag_length = 0;
    int ok = CCryptoBoringSSL_EVP_AEAD_CTX_seal_scatter(ctx, out, tag, &tag_length, 16, nonce, 12, in, length, NULL, 0, ad, ad_length);
    if (ok != 1 || tag_length != 16) {
        CCryptoBoringSSL_ERR_clear_error();
        return 0;
    }
    return 1;
}

/// Opens `length` bytes of `in` into `out` (which may be `in` itself) under a 12-byte nonce,
/// checking the 16-byte `tag` over them and `ad` (BoringSSL compares in constant time). Returns 1;
/// or 0, with `out` zeroed by BoringSSL and the error queue cleared, if anything was modified.
static inline int cmk_gcm_open(const cmk_boringssl_aead_ctx *ctx, const uint8_t *nonce, const uint8_t *ad, size_t ad_length,
                               const uint8_t *in, size_t length, const uint8_t *tag, uint8_t *out) {
    if (CCryptoBoringSSL_EVP_AEAD_CTX_open_gather(ctx, out, nonce, 12, in, length, tag, 16, ad, ad_length) != 1) {
        CCryptoBoringSSL_ERR_clear_error();
        return 0;
    }
    return 1;
}

#endif
