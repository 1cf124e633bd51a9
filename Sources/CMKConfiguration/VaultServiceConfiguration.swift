import Foundation
import Yams

/// The configuration of `cmk-vault`, the customer's vault service (docs/vault-service.md): where it
/// keeps its state, where it listens, its TLS certificate, its limits on hostile input and its
/// logging. Read strictly, like the daemon's: an unknown key, a wrong type or a value out of range
/// is refused with the key path and what is accepted (exit 78).
///
/// ```yaml
/// public-url: https://vault.example.com:8443
/// listen: systemd            # or 127.0.0.1:8443, [::1]:8443
/// tls:
///   certificate-credential: tls.crt
///   key-credential: tls.key
/// ```
public struct VaultServiceConfiguration: Sendable, Hashable {
    /// Where the service listens.
    public enum Listen: Sendable, Hashable, CustomStringConvertible {
        /// The one socket systemd passes (`cmk-vault.socket`, `sd_listen_fds(3)`).
        case systemd
        /// A TCP address bound by the service itself.
        case address(host: String, port: Int)

        public var description: String {
            switch self {
            case .systemd: "systemd"
            case .address(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            }
        }
    }

    /// A PEM file named by path or by systemd credential name (`LoadCredential=`).
    public enum Source: Sendable, Hashable {
        case file(String)
        case credential(String)
    }

    /// `tls`: the service's certificate chain and private key (PEM), and the lowest TLS version accepted.
    public struct TLS: Sendable, Hashable {
        public var certificate: Source
        public var key: Source
        /// `tls.minimum-version`: `1.2` (default) or `1.3`.
        public var minimumVersion: String = "1.2"
    }

    /// `limits`: bounds on what a client may send.
    public struct Limits: Sendable, Hashable {
        /// `limits.max-body-bytes`: larger request bodies are refused with 413 (default 64 KiB).
        public var maxBodyBytes = 65_536
        /// `limits.max-header-bytes`: the largest request head (default 16 KiB).
        public var maxHeaderBytes = 16_384
        /// `limits.max-page-size`: the most records one page of a listing holds (default 1,000).
        public var maxPageSize = 1_000
        /// `limits.key-operations-per-10s`: requests to the keys API admitted per 10 s for the whole
        /// vault, more get 429 with `Retry-After` as Azure Key Vault's service limits (default 2,000,
        /// Azure's figure for RSA 2,048-bit HSM keys; 0 turns the limit off).
        public var keyOperationsPer10s = 2_000

        /// The defaults.
        public init() {}
    }

    /// `authentication`: how failed authentications are throttled.
    public struct Authentication: Sendable, Hashable {
        /// `authentication.failures-per-client`: failed attempts for one client id within the window before 429.
        public var failuresPerClient = 10
        /// `authentication.failures-per-address`: failed attempts from one source address within the window before 429.
        public var failuresPerAddress = 30
        /// `authentication.failure-window`: how long a failure counts (default 5m).
        public var failureWindow: Duration = .seconds(300)

        /// The defaults.
        public init() {}
    }

    /// `vault`: the customer's root keys, kept by the service in a local vault under
    /// `<state-directory>/vault` and served through Azure Key Vault's keys API. Absent: no keys API.
    public struct KeyVault: Sendable, Hashable {
        /// `vault.master-key-file` or `vault.master-key-credential`: the 32-byte key that seals
        /// every private key at rest.
        public var masterKey: Source
        /// `vault.retention-days`: how long a deleted key stays recoverable, 7–90 (default 90).
        public var retentionDays = 90
        /// `vault.purge-protection`: refuse purges until the retention ends (default true).
        public var purgeProtection = true
        /// `vault.create-master-key`: make the master key file on the first start if it is missing
        /// (default false; for demos and tests, never with a credential).
        public var createMasterKey = false
        /// `vault.rotation-check-interval`: how often the service checks the keys' rotation
        /// policies (rotations due, expiry warnings), 1s–1h (default 1m).
        public var rotationCheckInterval: Duration = .seconds(60)

        public init(masterKey: Source) { self.masterKey = masterKey }
    }

    public static let defaultStateDirectory = "/var/lib/cmk-vault"
    public static let defaultConfigurationPath = "/etc/cmk-vault/cmk-vault.yaml"
    /// The keys of the top level.
    public static let topLevelKeys = ["state-directory", "public-url", "listen", "tls", "vault", "limits", "authentication", "logging", "events", "metrics"]

    /// The file read, absolute.
    public var file: String
    public var stateDirectory: String
    /// `public-url`: the service's origin as clients reach it (`https://host[:port]`); token issuer
    /// and discovery document addresses are built from it.
    public var publicURL: String
    public var listen: Listen
    public var tls: TLS
    /// The keys API and its vault; nil when the file has no `vault` section.
    public var vault: KeyVault?
    public var limits: Limits
    public var authentication: Authentication
    public var logging: SyncerConfiguration.Logging
    /// `events`: the key-event subscriptions; nil when the file has none.
    public var events: Events?
    /// `metrics` (mapping, optional; absent: off): Prometheus metrics on `metrics.listen`, plain HTTP on
    /// loopback or a unix socket, never the HTTPS port (the daemon's forms; docs/metrics.md).
    public var metrics: SyncerConfiguration.Metrics?

    /// Reads and validates the file at `path` (the same access rule as the daemon's configuration).
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) -> VaultServiceConfiguration {
        let text = try ConfigurationFile.text(at: path)
        return try parse(yaml: text, file: path, environment: environment)
    }

    /// Validates configuration text; `file` names it in errors and is the base of relative paths.
    public static func parse(yaml: String, file: String, environment: [String: String],
                             workingDirectory: String = FileManager.default.currentDirectoryPath) throws(ConfigurationError) -> VaultServiceConfiguration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw SyncerConfiguration.syntaxError(error, file: file, yaml: yaml)
        } catch {
            throw ConfigurationError(.syntax, "is not valid YAML", file: file)
        }
        guard let root, !NodeReader.isNull(root) else {
            throw ConfigurationError(.empty, "the file is empty: it needs at least public-url and tls (see config/cmk-vault.example.yaml)", file: file)
        }
        let absoluteFile = PathSyntax.normalise(file.hasPrefix("/") ? file : workingDirectory + "/" + file)
        let decoder = VaultServiceDecoder(reader: NodeReader(file: file), file: absoluteFile, environment: environment, workingDirectory: workingDirectory)
        return try decoder.decode(root)
    }
}
