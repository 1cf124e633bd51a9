/// What a vault provider can do; the syncer plans around it.
public struct VaultCapabilities: Hashable, Sendable, Codable {
    /// The provider's configuration name (`local`, `azure`, `pkcs11`, `memory`).
    public var provider: String
    /// The provider exports each version's public key, so DEKs can be wrapped locally.
    public var exportsPublicKey: Bool
    /// The provider wraps inside the vault (for keys whose public half cannot be exported).
    public var wrapsInVault: Bool
    /// The wrapping algorithms it supports.
    public var algorithms: Set<WrapAlgorithm>
    /// Key management (create, rotate, delete, recover, purge, update) through ``KeyVaultAdministration``.
    public var managesKeys: Bool
    /// Where operators manage keys when ``managesKeys`` is false (for error messages).
    public var managementHint: String?

    /// The algorithm new wrappings use: RSA-OAEP-256 where the provider exports public keys or
    /// wraps with RSA, AES key wrap with padding (``WrapAlgorithm/aesKeyWrapPad``) on a provider
    /// whose root keys are AES-256 (the PKCS#11 provider). Keyrings record it per DEK.
    public var wrapAlgorithm: WrapAlgorithm {
        exportsPublicKey || algorithms.contains(.rsaOAEP256) || algorithms.isEmpty ? .rsaOAEP256 : .aesKeyWrapPad
    }

    public init(provider: String, exportsPublicKey: Bool, wrapsInVault: Bool, algorithms: Set<WrapAlgorithm>,
                managesKeys: Bool, managementHint: String? = nil) {
        self.provider = provider
        self.exportsPublicKey = exportsPublicKey
        self.wrapsInVault = wrapsInVault
        self.algorithms = algorithms
        self.managesKeys = managesKeys
        self.managementHint = managementHint
    }
}
