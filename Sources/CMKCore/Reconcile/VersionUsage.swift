import Foundation

/// Which key versions are still referenced, by whom, and which are safe to disable (SPEC §5 first row).
public struct VersionUsage: Hashable, Sendable, Codable {
    public var version: String
    public var created: Date?
    public var enabled: Bool?
    public var expires: Date?
    public var notBefore: Date?
    /// True for the key's current version.
    public var current: Bool
    /// Accounts with at least one DEK wrapped under this version.
    public var accounts: [String]
    /// DEKs wrapped under this version, over all accounts.
    public var deks: Int
    /// Since when no account references the version (nil while referenced).
    public var unreferencedSince: Date?
    /// Unreferenced for at least the backup-retention horizon and not current: disabling it breaks
    /// nothing, not even a restore from a backup taken before the rebind.
    public var safeToDisable: Bool

    /// Computes usage from the keyrings after a pass.
    /// - Parameters:
    ///   - unread: for accounts whose keyring the pass could not read (failed), the versions they
    ///     were last known to use: they still count as users, since their DEKs still need them.
    ///   - previous: the usage of the previous pass, to carry `unreferencedSince` forward.
    ///   - backupRetention: how long backups may still hold DEKs wrapped under a version.
    public static func compute(versions: [KeyVersion], currentID: String?, keyrings: [String: Keyring],
                               unread: [String: [String]] = [:], previous: [VersionUsage], backupRetention: Duration,
                               now: Date) -> [VersionUsage] {
        let before = Dictionary(previous.map { ($0.version, $0) }, uniquingKeysWith: { first, _ in first })
        var ids = versions.map(\.id)
        for keyring in keyrings.values { for id in keyring.referencedVersions where !ids.contains(id) { ids.append(id) } }
        for known in unread.values { for id in known where !ids.contains(id) { ids.append(id) } }
        return ids.map { id in
            let version = versions.first { $0.id == id }
            let readers = keyrings.filter { $0.value.deks.contains { $0.keyVersion == id } }.keys
            let users = Set(readers).union(unread.filter { $0.value.contains(id) }.keys).sorted()
            let deks = keyrings.values.reduce(0) { $0 + $1.deks.filter { $0.keyVersion == id }.count }
            var since: Date?
            if users.isEmpty {
                // Unreferenced since an earlier pass saw it so, or since now: conservative, because
                // a backup taken just before this pass may still hold DEKs wrapped under it.
                since = before[id]?.unreferencedSince ?? now
            }
            let horizon = backupRetention.timeInterval
            let safe = users.isEmpty && id != currentID && since.map { now.timeIntervalSince($0) >= horizon } == true
            return VersionUsage(version: id, created: version?.created, enabled: version?.enabled, expires: version?.expires,
                                notBefore: version?.notBefore, current: id == currentID, accounts: users, deks: deks,
                                unreferencedSince: since, safeToDisable: safe)
        }
    }
}
