@testable import CMKPKCS11
import CMKCore
import CPKCS11
import Foundation
import Testing

/// SoftHSM 2.6.1 lists AES key wrap with padding as mechanism 0x210A (PKCS#11 2.40's
/// CKM_AES_KEY_WRAP_PAD), not 3.0's CKM_AES_KEY_WRAP_KWP (0x210B). What it really does, on the token:
/// - it unwraps RFC 5649's own vectors (section 6, 192-bit KEK) to the right keys;
/// - it wraps a 32-byte key (every DEK) exactly as RFC 5649 does: the expected value below is
///   Python cryptography's `aes_key_wrap_with_padding` (an independent RFC 5649 implementation)
///   of RFC 3394 section 4.6's 256-bit key data under its 256-bit KEK;
/// - it wraps a key whose length is not a multiple of 8 differently from RFC 5649: it pads the
///   value with zeros first, so the length in the wrapping is the padded one (RFC 5649 unwraps it
///   to the key plus zero bytes). DEKs are always 32 bytes, so keyrings may call what it makes A256KWP.
@Suite("PKCS#11: SoftHSM's key wrap with padding against RFC 5649", .serialized)
struct KeyWrapVectorTests {
    static let rfc5649KEK = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"
    /// RFC 5649 section 6: (key, its wrapping, what SoftHSM's wrap gives instead).
    static let rfc5649 = [
        ("c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
         "cf1e485360e1a8126f524d01771677f9400edb4d074f14116988d71e1588e367"),
        ("466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f", "0e13c7817f2e6681f64d911b7dd014d5"),
    ]
    static let kek256 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    static let key256 = "00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f"
    static let kwp256 = "4a8029243027353b0694cf1bd8fc745bb0ce8a739b19b1960b12426d4c39cfeda926d103ab34e9f6"

    static func bytes(_ hex: String) -> [UInt8] { VersionID.bytes(hex)! }

    static func sessionKEK(_ hex: String, _ session: PKCS11Session) throws(PKCS11Failure) -> CK_OBJECT_HANDLE {
        try session.create([
            .ulong(CKA_CLASS, CKO_SECRET_KEY), .ulong(CKA_KEY_TYPE, CKK_AES), .bool(CKA_TOKEN, false), .bool(CKA_WRAP, true),
            .bool(CKA_UNWRAP, true), PKCS11Attribute(CKA_VALUE, bytes(hex)),
        ])
    }

    @Test("RFC 5649 vectors unwrap on the token; a 32-byte key wraps to RFC 5649's bytes; shorter keys show SoftHSM's zero padding")
    func rfc5649() async throws {
        let token = try SoftHSMToken.make()
        defer { token.remove() }
        let vault = try token.vault()
        let mechanisms = try vault.pool.mechanisms()
        #expect(mechanisms.contains(CK_MECHANISM_TYPE(CKM_AES_KEY_WRAP_PAD)))
        #expect(!mechanisms.contains(CK_MECHANISM_TYPE(CKM_AES_KEY_WRAP_KWP)))
        let mechanism = CK_MECHANISM_TYPE(CKM_AES_KEY_WRAP_PAD)
        try vault.pool.withSession { (session) throws(PKCS11Failure) in
            let kek = try Self.sessionKEK(Self.rfc5649KEK, session)
            for (key, wrapping, softhsm) in Self.rfc5649 {
                #expect(try session.unwrap(Data(Self.bytes(wrapping)), with: kek, mechanism: mechanism) == SecretBytes(copying: Self.bytes(key)))
                let wrapped = try session.wrap(SecretBytes(copying: Self.bytes(key)), with: kek, mechanism: mechanism, keyType: CKK_GENERIC_SECRET)
                #expect(VersionID.hex(Array(wrapped)) == softhsm)
            }
            let kek256 = try Self.sessionKEK(Self.kek256, session)
            let wrapped = try session.wrap(SecretBytes(copying: Self.bytes(Self.key256)), with: kek256, mechanism: mechanism)
            #expect(VersionID.hex(Array(wrapped)) == Self.kwp256)
            #expect(try session.unwrap(Data(Self.bytes(Self.kwp256)), with: kek256, mechanism: mechanism) == SecretBytes(copying: Self.bytes(Self.key256)))
            try session.destroy(kek)
            try session.destroy(kek256)
        }
    }
}
