import CMKCore
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Loading and creating the vault master key.
enum MasterKey {
    static let byteCount = 32

    /// Loads the key, enforcing the permission rules of ``MasterKeySource``.
    static func load(_ source: MasterKeySource) throws(VaultError) -> SecretBytes {
        switch source {
        case .bytes(let secret):
            guard secret.count == byteCount else {
                throw VaultError(.misconfigured, "the in-memory master key has \(secret.count) bytes; it must have 32")
            }
            return secret.withUnsafeBytes { SecretBytes(copying: $0) }
        case .file(let url):
            try checkPermissions(url.path)
            return try decode(readFile(url.path), origin: "master key file \(url.path)")
        case .systemdCredential(let name, let directory):
            guard !name.isEmpty, !name.contains("/") else {
                throw VaultError(.misconfigured, "systemd credential name '\(name)' is invalid: use a plain file name")
            }
            let base: String
            if let directory {
                base = directory.path
            } else if let env = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"], !env.isEmpty {
                base = env
            } else {
                throw VaultError(.misconfigured, "the master key is the systemd credential '\(name)' but CREDENTIALS_DIRECTORY is not set: add LoadCredential=\(name):<path> (or LoadCredentialEncrypted=) to the unit")
            }
            let path = base + "/" + name
            return try decode(readFile(path), origin: "systemd credential \(path)")
        }
    }

    /// Refuses a master key file that is not a regular file owned by us with mode 0600 or stricter.
    static func checkPermissions(_ path: String) throws(VaultError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw VaultError(.misconfigured, "cannot read master key file \(path): \(VaultFiles.errnoText()); create one with `cmk-syncer` first-run setup (LocalVault.createMasterKeyFile)")
        }
        if let problem = FileAccessRule.privateFile.problem(with: info, path: path, what: "master key file") {
            throw VaultError(.misconfigured, problem.description)
        }
    }

    private static func readFile(_ path: String) throws(VaultError) -> SecretBytes {
        // The file's permissions were checked by `checkPermissions`; systemd guards credentials.
        guard let (data, _) = try VaultFiles.read(path, rule: nil, what: "master key file") else {
            throw VaultError(.misconfigured, "master key file \(path) does not exist")
        }
        var copy = data
        defer { copy.resetBytes(in: 0..<copy.count) }
        return SecretBytes(copying: copy)
    }

    /// Accepts exactly 32 raw bytes, or base64 text of 32 bytes with optional trailing whitespace.
    static func decode(_ contents: SecretBytes, origin: String) throws(VaultError) -> SecretBytes {
        defer { contents.zeroize() }
        if contents.count == byteCount { return contents.withUnsafeBytes { SecretBytes(copying: $0) } }
        let decoded: Data? = contents.withUnsafeBytes { raw in
            var end = raw.count
            while end > 0, [0x0A, 0x0D, 0x20, 0x09].contains(raw[end - 1]) { end -= 1 }
            var text = Data(raw[0..<end])
            defer { text.resetBytes(in: 0..<text.count) }
            return Data(base64Encoded: text)
        }
        guard var decoded, decoded.count == byteCount else {
            throw VaultError(.misconfigured, "\(origin) holds \(contents.count) bytes that are neither 32 raw bytes nor base64 text of 32 bytes")
        }
        defer { decoded.resetBytes(in: 0..<decoded.count) }
        return SecretBytes(copying: decoded)
    }
}

extension LocalVault {
    /// Creates a new random master key file for first-run setup: base64 text of 32 bytes and a
    /// newline, mode 0600, written atomically. Refuses (`.conflict`) to overwrite an existing file.
    public static func createMasterKeyFile(at url: URL) throws(VaultError) {
        let key = SecretBytes.random(count: MasterKey.byteCount)
        var text = key.withUnsafeBytes { Data(Data($0).base64EncodedString().utf8) }
        text.append(0x0A)
        defer { text.resetBytes(in: 0..<text.count); key.zeroize() }
        guard try VaultFiles.createExclusively(text, at: url.path, mode: 0o600) else {
            throw VaultError(.conflict, "master key file \(url.path) already exists; refusing to overwrite it (that would make every sealed key unreadable)")
        }
    }
}
