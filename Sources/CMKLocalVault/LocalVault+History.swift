import CMKCore
import Foundation

extension LocalVault {
    /// What the vault knows of a key: whether it holds it now and, if not, whether it ever did
    /// (`vault.json` records every creation and purge). A key that was purged or whose file
    /// vanished is never created again implicitly: only ``replaceLostKey(_:size:)`` does that.
    public enum KeyHistory: Sendable, Hashable, CustomStringConvertible {
        /// The key file exists (the key is present or soft-deleted).
        case present
        /// The vault has never held a key of that name.
        case neverHeld
        /// The key was purged on that date.
        case purged(Date)
        /// The key was created on that date and its file is gone without a purge (removed by hand,
        /// or lost with a restore from an older backup).
        case vanished(created: Date)
        /// The vault kept no history when the key might have existed (a vault made by an older
        /// version): it may have held the key.
        case unknown

        public var description: String {
            switch self {
            case .present: return "present"
            case .neverHeld: return "never held"
            case .purged(let date): return "purged on \(date.ISO8601Format())"
            case .vanished(let created): return "created on \(created.ISO8601Format()), its file vanished"
            case .unknown: return "unknown (the vault predates its key history)"
            }
        }
    }

    /// What the vault knows of `key` now.
    public func history(of key: KeyReference) throws(VaultError) -> KeyHistory {
        if try VaultFiles.identity(of: path(of: key)) != nil { return .present }
        return try VaultMarker.read(markerPath).absence(of: key.name)
    }

    /// Creates `key` only if this vault has never held a key of that name (the embedded default's
    /// `create: true`); returns nil when the key exists or was held before (purged, vanished, or
    /// a vault older than its key history), so that a purged key stays purged.
    public func createKeyIfNeverHeld(_ key: KeyReference, size: RSAKeySize) async throws -> KeyVersion? {
        guard try history(of: key) == .neverHeld else { return nil }
        do {
            return try await create(key, size: size, mode: .first).version
        } catch let error as VaultError where error.code == .conflict {
            // Another process created or purged it meanwhile.
            if try history(of: key) != .neverHeld { return nil }
            throw error
        }
    }

    /// Creates `key` again after it was purged or its file vanished: an explicit operator decision
    /// (`cmkctl keys create --replace-purged`), recorded in the vault's history. The new key
    /// cannot read anything encrypted under the old one. Returns the new version and what the
    /// history said of the old key; refused (`.conflict`) for a key that exists or was never held.
    public func replaceLostKey(_ key: KeyReference, size: RSAKeySize) async throws -> (version: KeyVersion, replaced: KeyHistory) {
        let created = try await create(key, size: size, mode: .replacement)
        return (created.version, created.history)
    }
}
