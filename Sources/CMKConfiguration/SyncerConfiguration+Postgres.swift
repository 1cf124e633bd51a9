import CMKCore

extension SyncerConfiguration {
    /// `postgres` (mapping, optional): the PostgreSQL database of the accounts whose driver is
    /// `postgres`. One connection pool per daemon serves all of them (docs/storage.md).
    public struct PostgresSettings: Sendable, Hashable {
        /// Where the server listens: `host` (name or address, TCP) or `socket-directory` (a unix
        /// socket directory, absolute path); exactly one is required. Not secret.
        public enum Endpoint: Sendable, Hashable {
            case host(String)
            case socketDirectory(String)
        }
        /// Where the password comes from; never the configuration file itself.
        public enum Password: Sendable, Hashable {
            /// `password-credential`: the systemd credential of that name in `$CREDENTIALS_DIRECTORY`.
            case credential(String)
            /// `password-file`: a file owned by the daemon's user with mode 0600 or 0400.
            case file(String)
            /// Neither: peer or trust authentication (a unix socket on the same host).
            case none
        }
        /// `tls` (`disable | require | verify-full`; default `verify-full` with `host`, `disable`
        /// with `socket-directory`, which cannot use TLS). Not secret.
        public enum TLS: String, Sendable, Hashable, CaseIterable {
            case disable
            case require
            case verifyFull = "verify-full"
        }

        public var endpoint: Endpoint
        /// `port` (1-65535, default 5432): the TCP port, or the number in the socket's name `.s.PGSQL.<port>`.
        public var port: Int = 5432
        /// `database` (required, not secret).
        public var database: String
        /// `user` (required, not secret): the role the daemon logs in as.
        public var user: String
        public var password: Password = .none
        public var tls: TLS
        /// `ca-file` (path, optional, only with `verify-full`): PEM certificate authorities; default the system's.
        public var caFile: String?
        /// `pool-size` (1-100, default 10): the most connections the daemon opens.
        public var poolSize: Int = 10
        /// `statement-timeout` (duration 1s-10m, default 30s): the server cancels a longer statement.
        public var statementTimeout: Duration = .seconds(30)
        /// `connect-timeout` (duration 1s-1m, default 10s).
        public var connectTimeout: Duration = .seconds(10)
        /// `lease-time` (duration 5s-1h, default 2m): how long a daemon's claim on an account's
        /// rebind lasts; a daemon killed mid-pass leaves its accounts to the others after this.
        /// Keep it longer than one account's rebind (an unwrap and a wrap per DEK, with retries).
        public var leaseTime: Duration = .seconds(120)

        public init(endpoint: Endpoint, database: String, user: String, tls: TLS) {
            self.endpoint = endpoint
            self.database = database
            self.user = user
            self.tls = tls
        }

        /// The password file to read: the credential's file in `$CREDENTIALS_DIRECTORY`, the
        /// configured file, or nil without a password.
        public func passwordPath(environment: [String: String], file: String = SyncerConfiguration.defaultPath) throws(ConfigurationError) -> String? {
            switch password {
            case .none: return nil
            case .file(let path): return path
            case .credential(let name):
                return try SyncerConfiguration.Vault.credentialPath(
                    name, environment: environment, keyPath: "postgres.password-credential", file: file,
                    missing: "the PostgreSQL password is the systemd credential \(Excerpt.quoted(name)) but $CREDENTIALS_DIRECTORY is not set: add LoadCredentialEncrypted=\(Excerpt.text(name)):/etc/credstore.encrypted/\(Excerpt.text(name)) (or LoadCredential=) to the unit, or use password-file")
            }
        }
    }
}
