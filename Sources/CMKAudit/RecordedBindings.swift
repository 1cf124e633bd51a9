import Foundation

/// What the security log says each account is bound to: the `version` of its last `rebind`
/// record and the DEK of its last `dek-minted` record.
///
/// The daemon compares it with every account's keyring after each pass. A keyring bound to a
/// version the log never recorded lost its records, for example to a crash between the keyring's
/// commit and the append, or to a log that could not be appended; ``missingRecords(account:key:binding:generation:activeDEK:activeDEKVersion:syncID:)``
/// writes them again, marked `recovered` (docs/security-log.md, "Records lost to a crash").
public struct RecordedBindings: Sendable, Hashable {
    /// One account's last recorded binding.
    public struct Binding: Sendable, Hashable {
        /// The `version` of the account's last `rebind` record.
        public var version: String?
        /// The `dek` detail of the account's last `dek-minted` record.
        public var mintedDEK: String?

        public init(version: String? = nil, mintedDEK: String? = nil) {
            self.version = version
            self.mintedDEK = mintedDEK
        }
    }

    /// By account name.
    public private(set) var accounts: [String: Binding] = [:]

    public init() {}

    /// Takes an appended record (or the entry it was made from) into account.
    public mutating func note(_ entry: SecurityLogEntry) {
        guard let account = entry.account else { return }
        switch entry.event {
        case .rebind:
            guard let version = entry.version else { return }
            accounts[account, default: Binding()].version = version
        case .dekMinted:
            guard let dek = entry.details["dek"] else { return }
            accounts[account, default: Binding()].mintedDEK = dek
        default:
            return
        }
    }

    /// The records that the log lacks for an account whose keyring is bound to `binding` with
    /// `activeDEK` (wrapped under `activeDEKVersion`) at `generation`: none when the log's last
    /// `rebind` for the account names `binding`; otherwise a `rebind` record (with the last
    /// recorded version as `previousVersion`), and, when the account had a recorded binding
    /// before and its active DEK is under the new version but was never recorded as minted, a
    /// `dek-minted` record. Both carry `recovered: true`.
    public func missingRecords(account: String, key: String, binding: String, generation: UInt64, activeDEK: String?,
                               activeDEKVersion: String?, syncID: String) -> [SecurityLogEntry] {
        let recorded = accounts[account]
        guard recorded?.version != binding else { return [] }
        let details = ["recovered": "true", "generation": String(generation), "sync_id": syncID]
        var entries = [SecurityLogEntry(event: .rebind, account: account, key: key, version: binding,
                                        previousVersion: recorded?.version, details: details)]
        if recorded?.version != nil, let activeDEK, activeDEKVersion == binding, recorded?.mintedDEK != activeDEK {
            entries.append(SecurityLogEntry(event: .dekMinted, account: account, key: key, version: binding,
                                            details: details.merging(["dek": activeDEK]) { $1 }))
        }
        return entries
    }
}

extension SecurityLog {
    /// Reads the whole log once and returns what it records about each account's binding.
    /// Only `rebind` and `dek-minted` lines are parsed. Throws like ``records(since:)``.
    public func recordedBindings() throws(AuditError) -> RecordedBindings {
        var bindings = RecordedBindings()
        let anchor = try SecurityLogAnchor.read(for: path)
        guard let file = try LogFile.openForReading(path) else {
            if let anchor { throw vanished(anchor, emptied: false) }
            return bindings
        }
        try file.lock(exclusive: false, timeout: lockTimeout)
        let rebind = Array(#""event":"rebind""#.utf8), minted = Array(#""event":"dek-minted""#.utf8)
        _ = try file.forEachLine { (number, _, line) throws(AuditError) in
            guard line.firstRange(of: rebind) != nil || line.firstRange(of: minted) != nil else { return }
            do {
                bindings.note(try SecurityRecord.parse(line: line).entry)
            } catch {
                throw AuditError(.corrupt, "line \(number) of security log '\(path)' is not a valid record (\(error)); run 'cmkctl audit verify'")
            }
        }
        return bindings
    }
}
