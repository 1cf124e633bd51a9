import Foundation

/// The algorithms a DEK can be wrapped with.
public enum WrapAlgorithm: String, Hashable, Sendable, Codable, CaseIterable {
    /// RSA-OAEP with SHA-256 and MGF1-SHA-256, empty label (Azure's `RSA-OAEP-256`).
    case rsaOAEP256 = "RSA-OAEP-256"
    /// AES key wrap with padding (RFC 5649) under an AES-256 root key, for HSMs that only offer
    /// those (SPEC §2). Written by the PKCS#11 provider (`CMKPKCS11`, wrapping on the token); the
    /// local and Azure providers refuse it (`vault.unsupported`). docs/storage.md.
    case aesKeyWrapPad = "A256KWP"
}

/// One DEK as stored: only its wrapping under one key version, never its plaintext.
public struct WrappedDEK: Hashable, Sendable, Codable {
    public var id: DEKID
    /// The root-key version that wraps this DEK.
    public var keyVersion: String
    public var algorithm: WrapAlgorithm
    /// The wrapped key bytes.
    public var wrappedKey: Data
    /// When the DEK was minted (not when it was last rewrapped).
    public var created: Date
    /// The key check value that binds the unwrapped DEK to this id and account (16 bytes,
    /// `CMKEnvelope.DEKCheckValue`), checked after every unwrap. Nil in DEKs wrapped before
    /// check values existed; the next rewrap adds it. Not secret.
    public var kcv: Data?

    public init(id: DEKID, keyVersion: String, algorithm: WrapAlgorithm = .rsaOAEP256, wrappedKey: Data, created: Date, kcv: Data? = nil) {
        self.id = id
        self.keyVersion = keyVersion
        self.algorithm = algorithm
        self.wrappedKey = wrappedKey
        self.created = created
        self.kcv = kcv
    }
}
