import CMKCore
import Crypto
import Foundation
import Glibc

/// The P-256 keys that sign access tokens, kept in `token-signing.key` beside the identity store
/// (0600, JSON, never logged; each key's private scalar base64url-encoded).
///
/// Rotation (docs/vault-service.md): a key is added with an `activates` date in the future, so it
/// is published in the JWKS before it signs; the key that signs is the one with the latest
/// `activates` not after now; a key that stopped signing stays published until its successor has
/// signed for one token lifetime plus the clock leeway, so every token it signed still verifies.
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
    /// Every key in the file, by activation date.
    public let keys: [Key]

    /// Loads `token-signing.key` from `stateDirectory`, creating it with one new key (active at
    /// once) if it does not exist. Two processes creating it at once end up with the same file.
    public init(stateDirectory: String, now: Date = Date()) throws {
        path = stateDirectory + "/" + Self.fileName
        let data: Data
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
        keys = try Self.parse(data, path: path)
    }

    /// The key that signs tokens issued at `now`.
    public func signingKey(at now: Date) -> Key {
        keys.last { $0.activates <= now } ?? keys[0]
    }

    /// The keys a verifier must know at `now`: those that sign now or will, and those whose last
    /// token may still be valid (replaced less than a token lifetime plus the leeway ago).
    public func publishedKeys(at now: Date) -> [Key] {
        keys.indices.filter { index in
            guard index + 1 < keys.count else { return true }
            return now < keys[index + 1].activates.addingTimeInterval(TokenService.lifetime + TokenService.clockLeeway)
        }.map { keys[$0] }
    }

    /// The JWKS to publish at `now`.
    public func keySet(at now: Date) -> JSONWebKeySet {
        JSONWebKeySet(keys: publishedKeys(at: now).map { JSONWebKey($0.publicKey) })
    }

    /// The file's bytes, or nil if it does not exist; refused unless private to this user.
    static func readFile(_ path: String) throws -> Data? {
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
        return data
    }

    static func parse(_ data: Data, path: String) throws -> [Key] {
        let corrupt = IdentityError(.corrupt, "the token-signing key file '\(path)' is not a valid key file; restore it from a backup, or remove it to make a new key (tokens already issued are then refused)")
        guard let file = try? JSONDecoder().decode(File.self, from: data), file.version == 1, !file.keys.isEmpty else { throw corrupt }
        let keys = try file.keys.map { entry in
            guard let scalar = Base64URL.decode(entry.d), let key = try? P256.Signing.PrivateKey(rawRepresentation: scalar),
                  JSONWebKey(key.publicKey).kid == entry.kid else { throw corrupt }
            return Key(kid: entry.kid, activates: Date(timeIntervalSince1970: entry.activates), privateKey: key)
        }
        return keys.sorted { $0.activates < $1.activates }
    }
}
