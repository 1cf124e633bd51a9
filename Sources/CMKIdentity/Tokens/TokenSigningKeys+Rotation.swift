import CMKCore
import Crypto
import Foundation
import Glibc

extension TokenSigningKeys {
    /// How long a new key is published before it signs, unless told otherwise: longer than any
    /// verifier caches a JWKS (PyJWT's `PyJWKClient` 5 minutes, Microsoft.IdentityModel's
    /// automatic refresh 12 hours), so no verifier meets a token whose key it has not fetched.
    public static let defaultActivationDelay: TimeInterval = 86_400
    /// The longest `activateIn` accepted.
    public static let maximumActivationDelay: TimeInterval = 30 * 86_400

    /// What a rotation did to the file.
    public struct Rotation: Sendable {
        /// The new key.
        public let added: Key
        /// The `kid`s taken out of the file: those no longer published, or every other key for
        /// `retireOthers`.
        public let removed: [String]
        /// The file's keys afterwards, by activation date.
        public let keys: [Key]
    }

    /// Adds a new signing key to `token-signing.key` in `stateDirectory`, active `activateIn` from
    /// `now`, and drops keys that are no longer published. With `retireOthers` the new key signs
    /// at once and is the only key left: every token signed before is refused from the service's
    /// next request on (`unknown-key`) — for a key that leaked.
    ///
    /// Refused (`identity.rotation-pending`) while a key added before has not begun to sign, unless
    /// `retireOthers`: two keys waiting would make the order of switchovers hard to follow.
    /// The file is replaced atomically (temp file, fsync, rename, fsync of the directory), under an
    /// exclusive lock on `token-signing.key.lock`, so two rotations run one after the other. A
    /// running service reads the new file at its next use of the keys.
    public static func rotate(stateDirectory: String, activateIn delay: TimeInterval = defaultActivationDelay, retireOthers: Bool = false,
                              now: Date = Date()) throws -> Rotation {
        guard delay >= 0, delay <= maximumActivationDelay else {
            throw IdentityError(.invalidEndDate, "the activation delay must be from 0 to 30 days")
        }
        let path = stateDirectory + "/" + fileName
        let lock = try lockFile(path + ".lock")
        defer { close(lock) }
        guard let (data, _) = try readFile(path) else {
            throw IdentityError(.notFound, "there is no \(fileName) in \(stateDirectory): cmk-vault makes it when it first starts; start the service once")
        }
        var entries = try parse(data, path: path)
        if !retireOthers, let pending = entries.last(where: { $0.key.activates > now }) {
            throw IdentityError(.rotationPending, "the key \(pending.key.kid) added by the previous rotation begins to sign at \(pending.key.activates.ISO8601Format()); rotate again after that, or with --retire-now to replace every key at once")
        }
        let published = Set(Self.published(entries.map(\.key), at: now).map(\.kid))
        var removed = entries.filter { !published.contains($0.key.kid) }.map(\.key.kid)
        entries.removeAll { !published.contains($0.key.kid) }
        if retireOthers {
            removed += entries.map(\.key.kid)
            entries = []
        }
        let privateKey = P256.Signing.PrivateKey()
        let activates = retireOthers ? now : now.addingTimeInterval(delay)
        let entry = File.Entry(kid: JSONWebKey(privateKey.publicKey).kid, created: now.timeIntervalSince1970, activates: activates.timeIntervalSince1970,
                               d: Base64URL.encode(privateKey.rawRepresentation))
        let added = Key(kid: entry.kid, activates: activates, privateKey: privateKey)
        entries.append((entry: entry, key: added))
        let encoded = try JSONEncoder().encode(File(keys: entries.map(\.entry)))
        do throws(SystemFileError) {
            try SystemFile.atomicWrite(encoded, to: path, mode: 0o600)
        } catch {
            throw IdentityError(error.isPermission ? .permissions : .io, "cannot replace the token-signing key file '\(path)': \(error.message); it is unchanged", underlying: error)
        }
        return Rotation(added: added, removed: removed, keys: entries.map(\.key))
    }

    /// The keys of the file in `stateDirectory` as it is now (for `cmkctl vault signing-keys`);
    /// nil if there is no file yet.
    public static func read(stateDirectory: String) throws -> [Key]? {
        let path = stateDirectory + "/" + fileName
        guard let (data, _) = try readFile(path) else { return nil }
        return try parse(data, path: path).map(\.key)
    }

    /// Opens (creating 0600 if needed) and exclusively locks `path`; the descriptor holds the lock.
    private static func lockFile(_ path: String) throws -> Int32 {
        let opened: Int32?
        do throws(SystemFileError) {
            opened = try SystemFile.open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode: 0o600)
        } catch {
            throw IdentityError(error.isPermission ? .permissions : .io, "cannot open the lock file '\(path)': \(error.message)", underlying: error)
        }
        guard let fd = opened else { throw IdentityError(.io, "cannot open the lock file '\(path)'") }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let message = String(cString: strerror(errno))
                close(fd)
                throw IdentityError(.io, "cannot lock '\(path)': \(message)")
            }
        }
        return fd
    }
}
