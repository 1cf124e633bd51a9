import CMKCore
import Crypto
import Foundation
import Glibc
import Synchronization

/// The P-256 keys that sign access tokens, kept in `token-signing.key` beside the identity store
/// (0600, JSON, never logged; each key's private scalar base64url-encoded).
///
/// Rotation (docs/vault-service.md): a key is added with an `activates` date in the future, so it
/// is published in the JWKS before it signs; the key that signs is the one with the latest
/// `activates` not after now; a key that stopped signing stays published until its successor has
/// signed for one token lifetime plus the clock leeway, so every token it signed still verifies.
///
/// The service keeps one instance for its lifetime; `cmkctl vault rotate-signing-key` replaces the
/// file (``rotate(stateDirectory:activateIn:retireOthers:now:)``) and the instance reads the new
/// file at its next use (one `stat(2)` per use notices the change), so a rotation needs no restart.
public final class TokenSigningKeys: Sendable {
    /// The key file's name in the state directory.
    public static let fileName = "token-signing.key"

    /// One signing key. Its description names the `kid` only.
    public struct Key: Sendable, CustomStringConvertible {
        public let kid: String
        public let activates: Date
        let privateKey: P256.Signing.PrivateKey
        public var publicKey: P256.Signing.PublicKey { privateKey.publicKey }
        public var description: String { "signing key \(kid)" }
    }

    /// The file's JSON.
    struct File: Codable {
        struct Entry: Codable {
            var kid: String
            var created: Double
            var activates: Double
            /// The private scalar, 32 bytes, base64url.
            var d: String
        }

        var version = 1
        var keys: [Entry]
    }

    /// The key file.
    public let path: String
    /// What was read last, and from which version of the file (device, inode, size, mtime).
    private let loaded: Mutex<(keys: [Key], file: FileVersion)>
    /// Told when a replaced file was read, with its keys.
    private let onReload: (@Sendable ([Key]) -> Void)?
    /// Told once per version of the file that cannot be read back (the keys read before stay in use).
    private let onReloadFailure: (@Sendable (IdentityError) -> Void)?
    private let failedVersion = Mutex<String?>(nil)

    /// Every key in the file, by activation date; re-read first if the file was replaced.
    public var keys: [Key] { current() }

    /// Identifies one version of the key file: an atomic replacement changes the inode.
    struct FileVersion: Equatable, Sendable {
        var device: UInt64, inode: UInt64, size: Int64, seconds: Int, nanoseconds: Int

        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            seconds = info.st_mtim.tv_sec
            nanoseconds = info.st_mtim.tv_nsec
        }
    }

    /// Loads `token-signing.key` from `stateDirectory`, creating it with one new key (active at
    /// once) if it does not exist. Two processes creating it at once end up with the same file.
    ///
    /// - Parameters:
    ///   - onReload: called with the keys of a replaced file once it has been read.
    ///   - onReloadFailure: called when a replaced file cannot be read or parsed (once per version
    ///     of the file); the keys read before keep signing and verifying until it is fixed.
    public init(stateDirectory: String, now: Date = Date(), onReload: (@Sendable ([Key]) -> Void)? = nil,
                onReloadFailure: (@Sendable (IdentityError) -> Void)? = nil) throws {
        path = stateDirectory + "/" + Self.fileName
        self.onReload = onReload
        self.onReloadFailure = onReloadFailure
        let data: (Data, stat)
        if let existing = try Self.readFile(path) {
            data = existing
        } else {
            let key = P256.Signing.PrivateKey()
            let entry = File.Entry(kid: JSONWebKey(key.publicKey).kid, created: now.timeIntervalSince1970, activates: now.timeIntervalSince1970,
                                   d: Base64URL.encode(key.rawRepresentation))
            let fresh = try JSONEncoder().encode(File(keys: [entry]))
            do throws(SystemFileError) {
                try SystemFile.makeDirectories(SystemFile.directory(of: path), mode: 0o700)
                _ = try SystemFile.createExclusively(fresh, at: path, mode: 0o600)
            } catch {
                throw IdentityError(error.isPermission ? .permissions : .io, "cannot create the token-signing key file '\(path)': \(error.message)", underlying: error)
            }
            guard let written = try Self.readFile(path) else { throw IdentityError(.io, "the token-signing key file '\(path)' vanished after it was created") }
            data = written
        }
        loaded = Mutex((keys: try Self.parse(data.0, path: path).map(\.key), file: FileVersion(data.1)))
    }

    /// The keys of the file as it is now: the loaded ones, unless the file was replaced since.
    /// A replacement that cannot be read (removed, corrupt, no longer private) leaves the loaded
    /// keys in use and is reported through `onReloadFailure`.
    private func current() -> [Key] {
        let (keys, version) = loaded.withLock { ($0.keys, $0.file) }
        var info = stat()
        guard stat(path, &info) == 0 else {
            report(IdentityError(.io, "the token-signing key file '\(path)' cannot be read (\(String(cString: strerror(errno)))); the keys read before stay in use until it is restored"), version: nil)
            return keys
        }
        let now = FileVersion(info)
        guard now != version else { return keys }
        do {
            guard let (data, info) = try Self.readFile(path) else { throw IdentityError(.io, "the token-signing key file '\(path)' vanished while it was read") }
            let fresh = try Self.parse(data, path: path).map(\.key)
            let replaced = loaded.withLock { state in
                defer { state = (keys: fresh, file: FileVersion(info)) }
                return state.file != FileVersion(info)
            }
            failedVersion.withLock { $0 = nil }
            if replaced { onReload?(fresh) }
            return fresh
        } catch let error as IdentityError {
            report(error, version: now)
        } catch {
            report(IdentityError(.io, "the token-signing key file '\(path)' cannot be read: \(error)"), version: now)
        }
        return keys
    }

    /// Calls `onReloadFailure` once per failing version of the file (`nil`: the file is missing).
    private func report(_ error: IdentityError, version: FileVersion?) {
        let marker = version.map { "\($0)" } ?? "missing"
        let first = failedVersion.withLock { last in
            defer { last = marker }
            return last != marker
        }
        if first { onReloadFailure?(error) }
    }

    /// The key that signs tokens issued at `now`.
    public func signingKey(at now: Date) -> Key {
        let keys = current()
        return keys.last { $0.activates <= now } ?? keys[0]
    }

    /// The keys a verifier must know at `now`: those that sign now or will, and those whose last
    /// token may still be valid (replaced less than a token lifetime plus the leeway ago).
    public func publishedKeys(at now: Date) -> [Key] {
        Self.published(current(), at: now)
    }

    static func published(_ keys: [Key], at now: Date) -> [Key] {
        keys.indices.filter { index in
            guard index + 1 < keys.count else { return true }
            return now < keys[index + 1].activates.addingTimeInterval(TokenService.lifetime + TokenService.clockLeeway)
        }.map { keys[$0] }
    }

    /// The JWKS to publish at `now`.
    public func keySet(at now: Date) -> JSONWebKeySet {
        JSONWebKeySet(keys: publishedKeys(at: now).map { JSONWebKey($0.publicKey) })
    }

    /// The file's bytes and status, or nil if it does not exist; refused unless private to this user.
    static func readFile(_ path: String) throws -> (Data, stat)? {
        let info: stat
        let data: Data
        do throws(SystemFileError) {
            guard let fd = try SystemFile.open(path, O_RDONLY | O_NOFOLLOW, missingOK: true) else { return nil }
            defer { close(fd) }
            info = try SystemFile.status(of: fd, path)
            data = try SystemFile.readToEnd(fd, path)
        } catch {
            throw IdentityError(error.isPermission ? .permissions : .io, "cannot read the token-signing key file '\(path)': \(error.message)", underlying: error)
        }
        if let problem = FileAccessRule.privateFile.problem(with: info, path: path, what: "token-signing key file") {
            throw IdentityError(problem.kind == .type ? .misconfigured : .permissions, problem.description)
        }
        return (data, info)
    }

    /// The file's entries with their keys, by activation date.
    static func parse(_ data: Data, path: String) throws -> [(entry: File.Entry, key: Key)] {
        let corrupt = IdentityError(.corrupt, "the token-signing key file '\(path)' is not a valid key file; restore it from a backup, or remove it to make a new key (tokens already issued are then refused)")
        guard let file = try? JSONDecoder().decode(File.self, from: data), file.version == 1, !file.keys.isEmpty else { throw corrupt }
        let keys = try file.keys.map { entry in
            guard let scalar = Base64URL.decode(entry.d), let key = try? P256.Signing.PrivateKey(rawRepresentation: scalar),
                  JSONWebKey(key.publicKey).kid == entry.kid else { throw corrupt }
            return (entry: entry, key: Key(kid: entry.kid, activates: Date(timeIntervalSince1970: entry.activates), privateKey: key))
        }
        return keys.sorted { $0.key.activates < $1.key.activates }
    }
}
