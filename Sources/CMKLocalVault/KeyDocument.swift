import CMKCore
import CMKKeyVaultAPI
import Foundation

/// The on-disk JSON document of one key (`keys/<name>.json`). Nothing secret is in plaintext:
/// private keys are sealed (see ``Sealing``).
struct KeyDocument: Codable, Sendable, Equatable {
    static let currentFormat = 1

    /// The document format version (bound into every seal's AAD).
    var format: Int
    var name: String
    /// Set while the key is soft-deleted.
    var deletedDate: Date?
    var scheduledPurgeDate: Date?
    /// When the vault last wrote this document, by its own reckoning: never before an earlier
    /// write, a version's creation or the deletion date, whatever the writer's clock said (nil in
    /// documents written before the vault kept it).
    var written: Date?
    /// Every version, oldest first.
    var versions: [StoredVersion]
    /// The name as it was created through cmk-vault's keys API, whose names are case-insensitive
    /// (the file and `name` are lower case there); nil for keys made by `cmkctl keys`.
    var displayName: String?
    /// The key's rotation policy set through cmk-vault's keys API (nil: none, Azure's default),
    /// and the versions whose near-expiry and expiry warnings the service gave (so each is given
    /// once, across restarts). Nil in documents written before; an older build drops them on write.
    var rotationPolicy: RotationPolicy?
    var nearExpiryWarned: String?
    var expiredWarned: String?

    struct StoredVersion: Codable, Sendable, Equatable {
        /// 32 lowercase hex digits.
        var id: String
        var created: Date
        var enabled: Bool
        var notBefore: Date?
        var expires: Date?
        var keySize: Int
        var publicKey: StoredPublicKey
        var sealedPrivateKey: SealedBox
        /// What cmk-vault's keys API keeps besides (nil in keys made by `cmkctl keys`, which
        /// mean `RSA`, every RSA operation, no tags, updated when created).
        var kty: String?
        var keyOps: [String]?
        var tags: [String: String]?
        var updated: Date?

        var keyVersion: KeyVersion {
            KeyVersion(id: id, created: created, enabled: enabled, notBefore: notBefore, expires: expires)
        }
    }

    /// The RSA public key as big-endian unsigned integers, base64 (the JWK `n` and `e`).
    struct StoredPublicKey: Codable, Sendable, Equatable {
        var n: Data
        var e: Data
        var material: PublicKeyMaterial { .rsa(modulus: n, exponent: e) }
    }

    /// AES-256-GCM output: 12-byte nonce, ciphertext of the PKCS#1 DER private key, 16-byte tag.
    struct SealedBox: Codable, Sendable, Equatable {
        var algorithm: String
        var nonce: Data
        var ciphertext: Data
        var tag: Data
    }

    var isDeleted: Bool { deletedDate != nil }

    /// The latest date in the key's own history: its last write, its newest version's creation and
    /// its deletion. A clock that reads earlier is wrong, and no date the vault records for the key
    /// from now on may be earlier (docs/providers/local.md, "Purge protection and clocks").
    var historyFloor: Date {
        ([written, deletedDate] + versions.map(\.created)).compactMap { $0 }.max() ?? .distantPast
    }

    func version(_ id: String) -> StoredVersion? { versions.first { $0.id == id } }

    func keyVersions() -> [KeyVersion] { versions.map(\.keyVersion) }

    // MARK: Encoding

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .secondsSince1970
        return encoder
    }

    /// The dates a document (or `vault.json`) may hold: the years 1 to 9999, in seconds since 1970.
    static let secondsRange: ClosedRange<Double> = -62_135_596_800...253_402_300_799.999

    /// Seconds since 1970 as a JSON number, within ``secondsRange``: a date beyond made the keys API's
    /// view of the document trap converting it to whole seconds (`created: 1e300`, checked with the
    /// local-vault fuzz target). Refused as a bad value at the field's path, like any other.
    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let seconds = try container.decode(Double.self)
            guard secondsRange.contains(seconds) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "a date outside the years 1 to 9999")
            }
            return Date(timeIntervalSince1970: seconds)
        }
        return decoder
    }

    func encoded() throws(VaultError) -> Data {
        do { return try Self.encoder().encode(self) } catch {
            throw VaultError(.corrupt, "cannot encode the document of key '\(name)'", underlying: error)
        }
    }

    /// Parses and checks a document read from `path`.
    static func decode(_ data: Data, path: String, expectedName: String) throws(VaultError) -> KeyDocument {
        let document: KeyDocument
        do { document = try decoder().decode(KeyDocument.self, from: data) } catch {
            throw VaultError(.corrupt, "key file \(path) is not a valid key document (corrupt JSON or missing field): \(describe(error))")
        }
        guard document.format == currentFormat else {
            throw VaultError(.corrupt, "key file \(path) has format \(document.format); this version reads format \(currentFormat)")
        }
        guard document.name == expectedName else {
            throw VaultError(.corrupt, "key file \(path) names key '\(document.name)', not '\(expectedName)': it was renamed or copied")
        }
        guard !document.versions.isEmpty else {
            throw VaultError(.corrupt, "key file \(path) has no versions")
        }
        var seen = Set<String>()
        for version in document.versions where !seen.insert(version.id).inserted {
            throw VaultError(.corrupt, "key file \(path) lists version \(version.id) twice: restore the file from a backup")
        }
        return document
    }

    /// A decoding error without the offending values (they could be key bytes).
    private static func describe(_ error: any Error) -> String {
        (error as? DecodingError)?.place ?? "unreadable"
    }

    /// Rounds a date to what the document stores (seconds since 1970 as a JSON number), so that
    /// every date the vault returns equals the one it will read back.
    static func stored(_ date: Date) -> Date { Date(timeIntervalSince1970: date.timeIntervalSince1970) }
}
