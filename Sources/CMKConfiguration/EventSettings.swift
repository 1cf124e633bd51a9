import CMKCore
import Foundation

/// The shared secret of an event delivery (docs/vault-service.md, "Events"): the bearer token
/// cmk-vault sends and a daemon's receiver expects (`Authorization: Bearer …`, Event Grid's static
/// secret delivery property). Never in the YAML: a systemd credential or a 0600 file.
public enum EventSecretSource: Sendable, Hashable, CustomStringConvertible {
    /// `secret-file`: a file only its owner may read (0600 or 0400).
    case file(String)
    /// `secret-credential`: the systemd credential of that name in `$CREDENTIALS_DIRECTORY`.
    case credential(String)

    public var description: String {
        switch self {
        case .file(let path): path
        case .credential(let name): "credential \(name)"
        }
    }

    /// Why a secret cannot be read; names the file or credential and the fix, never the content.
    public struct ReadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The secret without a trailing newline: 16 to 4,096 bytes of visible ASCII (a bearer token).
    public func read(environment: [String: String], what: String) throws(ReadError) -> SecretBytes {
        let path: String
        switch self {
        case .file(let file):
            path = file
        case .credential(let name):
            guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else {
                throw ReadError(description: "\(what) is the systemd credential '\(name)' but $CREDENTIALS_DIRECTORY is not set: add LoadCredential=\(name):<path> to the unit, or name a 0600 file")
            }
            path = directory + "/" + name
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ReadError(description: "\(what): \(path) cannot be read: \(String(cString: strerror(errno)))")
        }
        if case .file = self, let problem = FileAccessRule.credentialFile.problem(with: info, path: path, what: what) {
            throw ReadError(description: problem.description)
        }
        guard info.st_size <= 8_192, var data = FileManager.default.contents(atPath: path) else {
            throw ReadError(description: "\(what): \(path) cannot be read, or is larger than 8 KiB")
        }
        defer { data.resetBytes(in: 0..<data.count) }
        var end = data.count
        while end > 0, data[end - 1] == 0x0A || data[end - 1] == 0x0D { end -= 1 }
        let secret = data.prefix(end)
        guard (16...4_096).contains(secret.count), secret.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw ReadError(description: "\(what): \(path) must hold 16 to 4096 visible ASCII characters (no spaces) and at most a final newline: make one with `openssl rand -hex 32`")
        }
        return SecretBytes(copying: secret)
    }
}

/// The CloudEvents `type`s of key events: Azure Event Grid's three Key Vault key types and
/// cmk-vault's own for what Event Grid does not announce (a delete, a recovery, a purge, a version
/// disabled while hosts still use it).
/// `KeyEvent.Kind` in CMKVaultService raises exactly these.
public enum KeyEventTypes {
    public static let all = [
        "Microsoft.KeyVault.KeyNewVersionCreated", "Microsoft.KeyVault.KeyNearExpiry", "Microsoft.KeyVault.KeyExpired",
        "CMK.KeyVault.KeyDeleted", "CMK.KeyVault.KeyRecovered", "CMK.KeyVault.KeyPurged",
        "CMK.KeyVault.KeyVersionDisabledInUse",
    ]
}

extension VaultServiceConfiguration {
    /// `events` (mapping, optional): where cmk-vault pushes key events (docs/vault-service.md, "Events").
    public struct Events: Sendable, Hashable {
        /// `events.subscriptions[]`: one webhook each.
        public struct Subscription: Sendable, Hashable {
            /// `name`: unique, for the journal.
            public var name: String
            /// `endpoint`: an https URL, or http to a loopback address (127.0.0.0/8, [::1], localhost).
            public var endpoint: String
            /// `secret-file` or `secret-credential`: sent as `Authorization: Bearer <secret>`.
            public var secret: EventSecretSource
            /// `types` (default all): the event types delivered.
            public var types: [String]
            /// `ca-file` (PEM, optional): trust for an https endpoint instead of the system's roots.
            public var caFile: String?

            public init(name: String, endpoint: String, secret: EventSecretSource, types: [String] = KeyEventTypes.all, caFile: String? = nil) {
                self.name = name
                self.endpoint = endpoint
                self.secret = secret
                self.types = types
                self.caFile = caFile
            }
        }

        public var subscriptions: [Subscription]

        public init(subscriptions: [Subscription]) { self.subscriptions = subscriptions }
    }
}

extension SyncerConfiguration {
    /// `events` (mapping, optional; absent: off): a local listener for key events pushed by
    /// cmk-vault or Azure Event Grid; an event for the configured key runs a pass at once.
    public struct Events: Sendable, Hashable {
        /// `events.listen`: where the receiver listens. Loopback or a unix socket only.
        public enum Listen: Sendable, Hashable, CustomStringConvertible {
            case tcp(host: String, port: Int)
            case unix(path: String)

            public var description: String {
                switch self {
                case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
                case .unix(let path): "unix:\(path)"
                }
            }
        }

        public var listen: Listen
        /// `events.secret-file` or `events.secret-credential`.
        public var secret: EventSecretSource
        /// `events.allowed-origins` (list of host names, default none): the `WebHook-Request-Origin`
        /// values the validation handshake allows (e.g. `eventgrid.azure.net`, or cmk-vault's host).
        public var allowedOrigins: [String]

        public init(listen: Listen, secret: EventSecretSource, allowedOrigins: [String] = []) {
            self.listen = listen
            self.secret = secret
            self.allowedOrigins = allowedOrigins
        }
    }
}
