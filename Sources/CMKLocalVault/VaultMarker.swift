import CMKCore
import Crypto
import Foundation

/// `vault.json`: the vault's format, a master-key check value, so that a wrong master key is
/// reported once at start-up rather than as a failed seal on the first unwrap, and the history of
/// the keys the vault has held, so that a purged or vanished key is never silently created again.
struct VaultMarker: Codable, Sendable {
    var format: Int
    var created: Date
    /// The 22 bytes `cmk-syncer local vault` sealed under the master key like a private key
    /// (``Sealing``) of key `master-key-check`, version `0`: AES-256-GCM with the associated data
    /// `cmk-syncer/local-vault/v1` NUL `key=master-key-check` NUL `version=0` (56 bytes, no
    /// spaces). The master key is right when the box authenticates (docs/providers/local.md).
    var masterKeyCheck: KeyDocument.SealedBox
    /// Every key this vault has held, by name. Nil in a `vault.json` written before the vault kept
    /// this history: such a vault may have held keys it no longer knows about.
    var keys: [String: KeyRecord]?
    /// Set when the history was started in a vault that had none (the date it started): keys
    /// purged or lost before it are not in ``keys``.
    var keysSince: Date?

    /// What the vault remembers of one key.
    struct KeyRecord: Codable, Sendable, Equatable {
        /// When the key was created (or last created again by an operator).
        var created: Date
        /// Set while the creation is in flight: the record is written before the key file, so a
        /// crash in between leaves a key that was never complete, not one that vanished.
        var creating: Bool?
        /// When the key was purged; nil while it exists (present or soft-deleted).
        var purged: Date?
        /// How many times an operator created it again after a purge or a loss.
        var replaced: Int?
    }

    private static let checkKey = "master-key-check"
    private static let checkVersion = "0"

    /// What the marker says of a key whose file is absent.
    func absence(of name: String) -> LocalVault.KeyHistory {
        guard let keys, keysSince == nil || keys[name] != nil else { return .unknown }
        guard let record = keys[name], record.creating != true else { return .neverHeld }
        if let purged = record.purged { return .purged(purged) }
        return .vanished(created: record.created)
    }

    static func checkOrCreate(at path: String, keysDirectory: String, masterKey: SecretBytes, source: MasterKeySource) throws(VaultError) {
        if try VaultFiles.identity(of: path) == nil {
            // A vault that holds key files had a vault.json; making a new one would forget its history.
            if let keyFile = try? FileManager.default.contentsOfDirectory(atPath: keysDirectory).first(where: { $0.hasSuffix(".json") }) {
                throw VaultError(.corrupt, "vault file \(path) is missing although the vault holds \(keysDirectory)/\(keyFile): restore \(path) from a backup")
            }
            let check = SecretBytes(copying: Data("cmk-syncer local vault".utf8))
            let marker = VaultMarker(format: KeyDocument.currentFormat, created: KeyDocument.stored(Date()),
                                     masterKeyCheck: try Sealing.seal(check, key: checkKey, version: checkVersion, masterKey: masterKey),
                                     keys: [:])
            if try VaultFiles.createExclusively(try marker.encoded(path), at: path) { return }
        }
        let marker = try read(path)
        do {
            try Sealing.open(marker.masterKeyCheck, key: checkKey, version: checkVersion, masterKey: masterKey, path: path).zeroize()
        } catch {
            throw VaultError(.misconfigured, "the master key from \(source) does not open the vault at \((path as NSString).deletingLastPathComponent): wrong master key, or \(path) was tampered with")
        }
    }

    /// The marker on disk.
    static func read(_ path: String) throws(VaultError) -> VaultMarker {
        guard let (data, _) = try VaultFiles.readVaultFile(path, what: "vault file") else {
            throw VaultError(.corrupt, "vault file \(path) is missing: restore it from a backup")
        }
        let marker: VaultMarker
        do { marker = try KeyDocument.decoder().decode(VaultMarker.self, from: data) } catch {
            throw VaultError(.corrupt, "vault file \(path) is not valid (corrupt JSON or missing field)")
        }
        guard marker.format == KeyDocument.currentFormat else {
            throw VaultError(.corrupt, "vault file \(path) has format \(marker.format); this version reads format \(KeyDocument.currentFormat)")
        }
        return marker
    }

    /// Changes the history of one key (under the vault's lock) and writes the marker if it changed.
    static func update(_ path: String, key name: String, now: Date, _ change: (inout KeyRecord?) -> Void) throws(VaultError) {
        var marker = try read(path)
        var keys = marker.keys ?? [:]
        if marker.keys == nil { marker.keysSince = KeyDocument.stored(now) }
        var record = keys[name]
        change(&record)
        keys[name] = record
        guard keys != marker.keys else { return }
        marker.keys = keys
        try VaultFiles.atomicWrite(try marker.encoded(path), to: path)
    }

    private func encoded(_ path: String) throws(VaultError) -> Data {
        do { return try KeyDocument.encoder().encode(self) } catch {
            throw VaultError(.corrupt, "cannot encode \(path)", underlying: error)
        }
    }
}
