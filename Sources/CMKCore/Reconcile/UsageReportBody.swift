/// The body of cmk-vault's `POST /v1.0/usageReports` (docs/vault-service.md, "Version usage from
/// the hosts"): after a pass, for each key version, how many of the host's accounts and DEKs it
/// wraps. Counts only: no account names, no key material, and no host name (the service takes it
/// from the platform identity's token). The daemon encodes it (`UsageReporter`), the service
/// decodes it (`UsageRoutes`): one type, so the two sides cannot drift apart.
///
/// Decoding is strict inside `versions`: an element with a field this version does not know
/// throws ``UnknownField`` (the service's own check of the top level does not reach into arrays).
public struct UsageReportBody: Codable, Sendable, Equatable {
    /// How many of the host's accounts and DEKs one key version wraps.
    public struct Count: Codable, Sendable, Equatable {
        public var version: String
        public var accounts: Int
        public var deks: Int

        public init(version: String, accounts: Int, deks: Int) {
            self.version = version
            self.accounts = accounts
            self.deks = deks
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case version, accounts, deks }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            for key in container.allKeys where CodingKeys(rawValue: key.stringValue) == nil {
                throw UnknownField(field: "versions[]." + String(key.stringValue.prefix(64)), accepted: CodingKeys.allCases.map(\.rawValue).sorted())
            }
            let known = try decoder.container(keyedBy: CodingKeys.self)
            version = try known.decode(String.self, forKey: .version)
            accounts = try known.decode(Int.self, forKey: .accounts)
            deks = try known.decode(Int.self, forKey: .deks)
        }
    }

    /// A field the body may not carry, and the fields accepted where it stands.
    public struct UnknownField: Error, Sendable, CustomStringConvertible {
        public var field: String
        public var accepted: [String]
        public var description: String { "unknown field '\(field)' (accepted: \(accepted.joined(separator: ", ")))" }
    }

    /// The key the host's accounts are bound to.
    public var key: String
    /// The pass the report comes from (`CMK_SYNC_ID` in the host's journal).
    public var syncId: String
    /// When that pass finished: ISO 8601 with fractional seconds, the host's clock.
    public var finished: String
    /// The host's `sync.interval`, seconds.
    public var passInterval: Double
    /// Accounts the host has in all.
    public var accounts: Int
    /// The versions some account uses (versions no account uses are left out).
    public var versions: [Count]

    public init(key: String, syncId: String, finished: String, passInterval: Double, accounts: Int, versions: [Count]) {
        self.key = key
        self.syncId = syncId
        self.finished = finished
        self.passInterval = passInterval
        self.accounts = accounts
        self.versions = versions
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case key, syncId, finished, passInterval, accounts, versions }

    /// The top-level fields, for the service's strict reading.
    public static var fields: [String] { CodingKeys.allCases.map(\.rawValue) }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
