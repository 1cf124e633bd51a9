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
#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
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

/// The vDSO's getrandom (Linux 6.11 and later): the kernel's CSPRNG without a system call, from
/// a per-thread state that the kernel itself invalidates on fork and on VM snapshot/clone (its
/// generation counter), so no bytes are ever handed out twice. glibc wraps it from 2.41; Debian 12
/// has 2.36, so this finds `__vdso_getrandom` in the vDSO's own symbol table (its ELF image in
/// this process, AT_SYSINFO_EHDR). 79 ns for the envelope's 39 bytes here, against 490 ns for
/// the system call.
typedef ssize_t (*cmk_vgetrandom_fn)(void *buffer, size_t length, unsigned int flags, void *state, size_t state_length);
struct cmk_vgetrandom_params { uint32_t size_of_opaque_state, mmap_prot, mmap_flags, reserved[13]; };

/// `__vdso_getrandom`, or NULL (a kernel before 6.11, no vDSO, not a 64-bit ELF).
static inline cmk_vgetrandom_fn cmk_vdso_getrandom_lookup(void) {
    uintptr_t base = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
    if (base == 0) return NULL;
    const Elf64_Ehdr *ehdr = (const Elf64_Ehdr *)base;
    if (memcmp(ehdr->e_ident, ELFMAG, SELFMAG) != 0 || ehdr->e_ident[EI_CLASS] != ELFCLASS64) return NULL;
    const Elf64_Phdr *phdr = (const Elf64_Phdr *)(base + ehdr->e_phoff);
    uintptr_t load_offset = 0;
    const Elf64_Dyn *dynamic = NULL;
    int loaded = 0;
    for (int i = 0; i < ehdr->e_phnum; i++) {
        if (phdr[i].p_type == PT_LOAD && !loaded) {
            load_offset = base + phdr[i].p_offset - phdr[i].p_vaddr;
            loaded = 1;
        } else if (phdr[i].p_type == PT_DYNAMIC) {
            dynamic = (const Elf64_Dyn *)(base + phdr[i].p_offset);
        }
    }
    if (!loaded || dynamic == NULL) return NULL;
    const char *strings = NULL;
    const Elf64_Sym *symbols = NULL;
    const Elf64_Word *hash = NULL;
    for (const Elf64_Dyn *entry = dynamic; entry->d_tag != DT_NULL; entry++) {
        if (entry->d_tag == DT_STRTAB) strings = (const char *)(entry->d_un.d_ptr + load_offset);
        else if (entry->d_tag == DT_SYMTAB) symbols = (const Elf64_Sym *)(entry->d_un.d_ptr + load_offset);
        else if (entry->d_tag == DT_HASH) hash = (const Elf64_Word *)(entry->d_un.d_ptr + load_offset);
    }
    if (strings == NULL || symbols == NULL || hash == NULL) return NULL;
    for (Elf64_Word i = 0; i < hash[1]; i++) {  // DT_HASH's second word: the number of symbols
        const Elf64_Sym *symbol = &symbols[i];
        if (ELF64_ST_TYPE(symbol->st_info) != STT_FUNC || symbol->st_shndx == SHN_UNDEF) continue;
        if (strcmp(strings + symbol->st_name, "__vdso_getrandom") == 0) return (cmk_vgetrandom_fn)(symbol->st_value + load_offset);
    }
    return NULL;
}

/// What the process found once: the function and the kernel's parameters for its states. Kept
/// in function-local statics: Swift emits a header's inline functions, not its global variables.
struct cmk_vgetrandom {
    cmk_vgetrandom_fn function;
    struct cmk_vgetrandom_params params;
    pthread_key_t key;
};

static inline void cmk_vgetrandom_state_free(void *state) { munmap(state, 4096); }

static inline struct cmk_vgetrandom *cmk_vgetrandom_shared(void) {
    static struct cmk_vgetrandom shared;
    return &shared;
}

static inline void cmk_vgetrandom_setup(void) {
    struct cmk_vgetrandom *shared = cmk_vgetrandom_shared();
    cmk_vgetrandom_fn found = cmk_vdso_getrandom_lookup();
    // The kernel's answer for (NULL, 0, 0, params, ~0): the state's size and how to map it.
    if (found == NULL || found(NULL, 0, 0, &shared->params, ~0UL) != 0
        || shared->params.size_of_opaque_state == 0 || shared->params.size_of_opaque_state > 4096
        || pthread_key_create(&shared->key, cmk_vgetrandom_state_free) != 0) return;
    shared->function = found;
}

/// This thread's vDSO state (one page, mapped as the kernel asks, unmapped when the thread
/// ends), or NULL when there is no vDSO getrandom.
static inline void *cmk_vgetrandom_thread_state(const struct cmk_vgetrandom **found) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    static __thread void *state;
    pthread_once(&once, cmk_vgetrandom_setup);
    const struct cmk_vgetrandom *shared = cmk_vgetrandom_shared();
    *found = shared;
    if (shared->function == NULL) return NULL;
    if (state == NULL) {
        void *page = mmap(NULL, 4096, (int)shared->params.mmap_prot, (int)shared->params.mmap_flags, -1, 0);
        if (page == MAP_FAILED) return NULL;
        if (pthread_setspecific(shared->key, page) != 0) {
            munmap(page, 4096);
            return NULL;
        }
        state = page;
    }
    return state;
}

/// Fills `out` with `length` bytes from the kernel's CSPRNG: through the vDSO where the kernel
/// has it, else getrandom(2) (which the Swift Glibc module does not import), in one call for the
/// envelope's 39 bytes per object (Swift's SystemRandomNumberGenerator makes one per 8 bytes).
/// Blocks only before the pool is seeded at boot. `use_vdso` 0 forces the system call (tests).
/// Returns 1, or 0 if the kernel refuses (no getrandom: seccomp, Linux < 3.17).
static inline int cmk_random_bytes_using(int use_vdso, unsigned char *out, size_t length) {
    const struct cmk_vgetrandom *vdso = NULL;
    void *state = use_vdso ? cmk_vgetrandom_thread_state(&vdso) : NULL;
    while (length > 0) {
        ssize_t got = state != NULL ? vdso->function(out, length, 0, state, vdso->params.size_of_opaque_state)
                                    : getrandom(out, length, 0);
        if (got < 0) {
            // The vDSO returns -errno, the system call -1 and errno.
            int error = state != NULL ? (int)-got : errno;
            if (error == EINTR) continue;
            if (state != NULL) {
                state = NULL;  // anything else: let the system call decide
                continue;
            }
            return 0;
        }
        out += got;
        length -= (size_t)got;
    }
    return 1;
}

/// ``cmk_random_bytes_using`` with the vDSO where there is one.
static inline int cmk_random_bytes(unsigned char *out, size_t length) { return cmk_random_bytes_using(1, out, length); }

/// 1 if random bytes come from the vDSO in this process.
static inline int cmk_random_uses_vdso(void) {
    const struct cmk_vgetrandom *vdso = NULL;
    return cmk_vgetrandom_thread_state(&vdso) != NULL;
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
