import CMKCore

extension SyncerConfiguration.Vault {
    /// `vault.pkcs11`: the settings of the PKCS#11 provider (docs/providers/pkcs11.md). The PIN is
    /// never in the file: it names a file or a systemd credential.
    public struct PKCS11Settings: Sendable, Hashable {
        /// Where the token's user PIN (**secret**) comes from.
        public enum PIN: Sendable, Hashable {
            /// `vault.pkcs11.pin-file` (path): a file of the PIN, owned by the syncer's user, mode 0600.
            case file(String)
            /// `vault.pkcs11.pin-credential` (credential name): the file of that name in `$CREDENTIALS_DIRECTORY`.
            case credential(String)
        }

        /// The retention days a pull keeps the key restorable (as the local vault and Azure).
        public static let allowedRetentionDays = 7...90
        /// The sessions the pool may keep open between calls.
        public static let allowedSessions = 1...64

        /// `vault.pkcs11.module` (path, required, not secret): the vendor's PKCS#11 library,
        /// dlopened (SoftHSM: `/usr/lib/softhsm/libsofthsm2.so`).
        public var module: String
        /// `vault.pkcs11.token-label` (1–32 bytes, required, not secret): the label of the token
        /// that holds the key; its slot is looked up by it (and again after the token was removed).
        public var tokenLabel: String
        /// `vault.pkcs11.pin-file` or `vault.pkcs11.pin-credential` (exactly one, required; names a
        /// **secret** but is not one).
        public var pin: PIN
        /// `vault.pkcs11.retention-days` (7–90, default 90, not secret): days from a pull to the scheduled purge.
        public var retentionDays: Int
        /// `vault.pkcs11.purge-protection` (bool, default `true`, not secret): refuse a purge before that date.
        public var purgeProtection: Bool
        /// `vault.pkcs11.sessions` (1–64, default 4, not secret): sessions kept open between calls.
        public var sessions: Int
        /// `vault.pkcs11.wrap-algorithm` (`A256KWP` or `RSA-OAEP-256`, default `A256KWP`, not secret):
        /// the kind of version `cmkctl keys create/rotate` generates on the token and how DEKs are wrapped.
        public var wrapAlgorithm: WrapAlgorithm

        public init(module: String, tokenLabel: String, pin: PIN, retentionDays: Int = 90, purgeProtection: Bool = true, sessions: Int = 4,
                    wrapAlgorithm: WrapAlgorithm = .aesKeyWrapPad) {
            self.wrapAlgorithm = wrapAlgorithm
            self.module = module
            self.tokenLabel = tokenLabel
            self.pin = pin
            self.retentionDays = retentionDays
            self.purgeProtection = purgeProtection
            self.sessions = sessions
        }
    }
}
