import CMKCore

extension SyncerConfiguration {
    /// `vault`: which vault holds the root key and how to reach it.
    public struct Vault: Sendable, Hashable {
        /// The vault providers this build implements.
        public enum Provider: String, Sendable, Hashable, CaseIterable {
            /// The embedded local vault (module `CMKLocalVault`): keys in a directory on this host.
            case local
            /// Azure Key Vault (module `CMKAzureKeyVault`): the keys REST API over HTTPS.
            case azure
            /// A PKCS#11 token, an HSM or SoftHSM (module `CMKPKCS11`): AES-256 root keys on the token.
            case pkcs11
        }

        /// Provider names that exist in the product but are not compiled into this build (none now).
        public static let unavailableProviders: [String] = []

        /// `vault.provider` (`local` | `azure` | `pkcs11`, required, not secret).
        public var provider: Provider

        /// `vault.key` (key name, default `data-at-rest-rsa2048`, not secret): the root key's name;
        /// 1–127 characters of `A-Z a-z 0-9 -`.
        public var key: KeyReference

        /// `vault.local` (mapping, required when the provider is `local`): the local vault's
        /// settings. Non-nil exactly when ``provider`` is ``Provider/local``.
        public var local: LocalSettings?

        /// `vault.azure` (mapping, required when the provider is `azure`): the Azure Key Vault
        /// provider's settings. Non-nil exactly when ``provider`` is ``Provider/azure``.
        public var azure: AzureSettings?

        /// `vault.pkcs11` (mapping, required when the provider is `pkcs11`): the PKCS#11 provider's
        /// settings. Non-nil exactly when ``provider`` is ``Provider/pkcs11``.
        public var pkcs11: PKCS11Settings?

        public init(provider: Provider = .local, key: KeyReference, local: LocalSettings?, azure: AzureSettings? = nil,
                    pkcs11: PKCS11Settings? = nil) {
            self.provider = provider
            self.key = key
            self.local = local
            self.azure = azure
            self.pkcs11 = pkcs11
        }

        /// `vault.local`: the settings of the local vault provider.
        public struct LocalSettings: Sendable, Hashable {
            /// Where the local vault's 32-byte master key (**secret**) comes from. The
            /// configuration only names the place; the key is never inline.
            public enum MasterKey: Sendable, Hashable {
                /// `vault.local.master-key-file` (path): a file of 32 raw bytes or their base64,
                /// owned by the syncer's user with mode 0600.
                case file(String)
                /// `vault.local.master-key-credential` (credential name): the file of that name in
                /// `$CREDENTIALS_DIRECTORY`, provided by `LoadCredential=` or `LoadCredentialEncrypted=`.
                case credential(String)
            }

            /// The key sizes the local vault creates.
            public static let allowedKeySizes = [2048, 3072, 4096]
            /// The retention days the local vault accepts (as Azure Key Vault).
            public static let allowedRetentionDays = 7...90

            /// `vault.local.directory` (path, default `<state-directory>/vault`, not secret).
            public var directory: String
            /// `vault.local.master-key-file` or `vault.local.master-key-credential` (exactly one is
            /// required; names a **secret** but is not one).
            public var masterKey: MasterKey
            /// `vault.local.create` (bool, default `false`, not secret): on first run, create the
            /// vault directory, the master key file (not a credential) and the key if missing.
            /// Meant for the embedded default and demos; production vaults are provisioned once.
            public var create: Bool
            /// `vault.local.key-size` (2048 | 3072 | 4096, default 2048, not secret): the RSA
            /// modulus size used when the key is created.
            public var keySize: Int
            /// `vault.local.retention-days` (7–90, default 90, not secret): days from deletion to
            /// the scheduled purge date.
            public var retentionDays: Int
            /// `vault.local.purge-protection` (bool, default `true`, not secret): refuse purging a
            /// deleted key before its scheduled purge date.
            public var purgeProtection: Bool

            public init(directory: String, masterKey: MasterKey, create: Bool = false, keySize: Int = 2048,
                        retentionDays: Int = 90, purgeProtection: Bool = true) {
                self.directory = directory
                self.masterKey = masterKey
                self.create = create
                self.keySize = keySize
                self.retentionDays = retentionDays
                self.purgeProtection = purgeProtection
            }

            /// The absolute path of the master key: the file itself, or the credential's file in
            /// `$CREDENTIALS_DIRECTORY`. Throws ``ConfigurationError/Code/credentialsDirectoryMissing``
            /// when the key is a credential and the variable is unset (the unit lacks `LoadCredential=`).
            /// `file` names the configuration file in the error.
            public func masterKeyPath(environment: [String: String], file: String = SyncerConfiguration.defaultPath) throws(ConfigurationError) -> String {
                switch masterKey {
                case .file(let path):
                    return path
                case .credential(let name):
                    return try SyncerConfiguration.Vault.credentialPath(
                        name, environment: environment, keyPath: "vault.local.master-key-credential", file: file,
                        missing: "the master key is the systemd credential \(Excerpt.quoted(name)) but $CREDENTIALS_DIRECTORY is not set: add LoadCredential=\(Excerpt.text(name)):/etc/cmk-syncer/master.key (or LoadCredentialEncrypted=) to the unit, or use master-key-file")
                }
            }
        }

        /// The file of the systemd credential `name` in `$CREDENTIALS_DIRECTORY`; throws
        /// ``ConfigurationError/Code/credentialsDirectoryMissing`` with `missing` when the variable is unset.
        static func credentialPath(_ name: String, environment: [String: String], keyPath: String, file: String,
                                   missing: String) throws(ConfigurationError) -> String {
            let directory = environment["CREDENTIALS_DIRECTORY"] ?? ""
            guard !directory.isEmpty else {
                throw ConfigurationError(.credentialsDirectoryMissing, missing, keyPath: keyPath, file: file)
            }
            return PathSyntax.normalise(directory.hasSuffix("/") ? directory + name : directory + "/" + name)
        }
    }
}
