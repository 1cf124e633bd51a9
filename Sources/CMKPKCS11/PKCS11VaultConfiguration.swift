import CMKCore
import Foundation

/// How the PKCS#11 provider reaches its token (docs/providers/pkcs11.md).
public struct PKCS11VaultConfiguration: Sendable {
    /// The vendor's PKCS#11 library (`String`, required, not secret), dlopened, never linked.
    public var modulePath: String
    /// The token's label (`String`, required, not secret): the slot is the one whose token has it.
    public var tokenLabel: String
    /// Where the user PIN (**secret**) comes from; never the configuration itself.
    public var pin: PINSource
    /// Days from a pull (`deleteKey`) to the scheduled purge (`Int`, default 90, 7–90, not secret).
    public var retentionDays: Int
    /// Refuse a purge before the scheduled date (`Bool`, default `true`, not secret).
    public var purgeProtection: Bool
    /// Sessions kept open between calls (`Int`, default 4, 1–64, not secret).
    public var sessions: Int
    /// How DEKs are wrapped (`vault.pkcs11.wrap-algorithm`, default `A256KWP`, not secret): new
    /// versions are AES-256 keys (A256KWP, on the token) or RSA key pairs (RSA-OAEP-256, wrapped
    /// locally, unwrapped on the token with SHA-256/MGF1-SHA-256, which SoftHSM 2.6 lacks).
    public var wrapAlgorithm: WrapAlgorithm
    /// The source of "now" (default the system clock).
    public var clock: any WallClock

    public init(modulePath: String, tokenLabel: String, pin: PINSource, retentionDays: Int = 90, purgeProtection: Bool = true,
                sessions: Int = 4, wrapAlgorithm: WrapAlgorithm = .aesKeyWrapPad, clock: any WallClock = SystemWallClock()) {
        self.wrapAlgorithm = wrapAlgorithm
        self.modulePath = modulePath
        self.tokenLabel = tokenLabel
        self.pin = pin
        self.retentionDays = retentionDays
        self.purgeProtection = purgeProtection
        self.sessions = sessions
        self.clock = clock
    }
}

/// Where the token's user PIN comes from. The PIN is **secret**: it is read once when the provider
/// starts, kept in ``SecretBytes``, and never written to a log or an error.
public enum PINSource: Sendable, CustomStringConvertible {
    /// A file owned by the syncer's user with mode 0600 or stricter holding the PIN (one trailing
    /// newline is ignored).
    case file(String)
    /// A systemd credential: the file of that name in `$CREDENTIALS_DIRECTORY` (`LoadCredential=`).
    case credential(name: String, directory: String?)
    /// The PIN itself (tests).
    case bytes(SecretBytes)

    public var description: String {
        switch self {
        case .file(let path): return "PIN file \(path)"
        case .credential(let name, _): return "systemd credential \(name)"
        case .bytes: return "in-memory PIN"
        }
    }

    /// Reads the PIN. `.misconfigured` naming the file (never its contents) when it cannot be used.
    func load() throws(VaultError) -> SecretBytes {
        let path: String
        let rule: FileAccessRule
        switch self {
        case .bytes(let pin): return pin
        case .file(let file):
            path = file
            rule = .privateFile
        case .credential(let name, let directory):
            guard !name.isEmpty, !name.contains("/") else {
                throw VaultError(.misconfigured, "the PKCS#11 PIN credential name '\(name)' is invalid: use a plain file name")
            }
            guard let base = directory ?? ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"], !base.isEmpty else {
                throw VaultError(.misconfigured, "the PKCS#11 PIN is the systemd credential '\(name)' but CREDENTIALS_DIRECTORY is not set: add LoadCredential=\(name):/etc/cmk-syncer/token.pin (or LoadCredentialEncrypted=) to the unit")
            }
            path = base + "/" + name
            rule = .credentialFile
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw VaultError(.misconfigured, "cannot read the PKCS#11 PIN from \(description) (\(path)): \(String(cString: strerror(errno)))")
        }
        if let problem = rule.problem(with: info, path: path, what: "PKCS#11 PIN file") {
            throw VaultError(.misconfigured, problem.description)
        }
        guard var data = FileManager.default.contents(atPath: path) else {
            throw VaultError(.misconfigured, "cannot read the PKCS#11 PIN from \(description) (\(path))")
        }
        defer { data.resetBytes(in: 0..<data.count) }
        var end = data.count
        if end > 0, data[end - 1] == 0x0A { end -= 1 }
        if end > 0, data[end - 1] == 0x0D { end -= 1 }
        guard (1...255).contains(end) else {
            throw VaultError(.misconfigured, "the PKCS#11 PIN in \(path) is empty or longer than 255 bytes")
        }
        return SecretBytes(copying: data.prefix(end))
    }
}
