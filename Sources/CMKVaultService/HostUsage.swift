import CMKCore
import Foundation

/// What one host's daemon last told the service about its use of the customer's key, after a pass
/// (docs/vault-service.md, "Version usage from the hosts"). Counts and the host's name only:
/// nothing secret, no account names.
public struct HostUsageReport: Codable, Sendable, Equatable {
    /// How many of the host's accounts and DEKs one key version wraps: the report body's own count.
    public typealias VersionCount = UsageReportBody.Count

    /// The platform identity's host name (from the token, never from the body).
    public var host: String
    /// The key the host's accounts are bound to (lowercased).
    public var key: String
    /// The pass the report comes from (`CMK_SYNC_ID` in that host's journal).
    public var syncID: String
    /// When that pass finished (the host's clock).
    public var finished: Date
    /// The host's `sync.interval`, seconds: a report older than two of them is stale.
    public var passInterval: Double
    /// Accounts the host has in all.
    public var accounts: Int
    public var versions: [VersionCount]
    /// When the service received it (the service's clock: staleness is judged on this).
    public var received: Date

    public init(host: String, key: String, syncID: String, finished: Date, passInterval: Double, accounts: Int,
                versions: [VersionCount], received: Date) {
        self.host = host
        self.key = key
        self.syncID = syncID
        self.finished = finished
        self.passInterval = passInterval
        self.accounts = accounts
        self.versions = versions
        self.received = received
    }

    /// Older than two pass intervals at `now`: the host may have changed since (or be gone).
    public func isStale(at now: Date) -> Bool {
        now.timeIntervalSince(received) > 2 * passInterval
    }
}

/// One key version's use over every host that reported. Stale reports still count (a host that
/// stopped reporting may still need the version) and are named apart.
public struct KeyVersionUsage: Sendable, Equatable {
    public var version: String
    public var accounts: Int
    public var deks: Int
    /// Hosts whose latest report names the version, fresh ones first, each sorted.
    public var hosts: [String]
    /// The subset of ``hosts`` whose report is stale.
    public var staleHosts: [String]

    public init(version: String, accounts: Int, deks: Int, hosts: [String], staleHosts: [String]) {
        self.version = version
        self.accounts = accounts
        self.deks = deks
        self.hosts = hosts
        self.staleHosts = staleHosts
    }

    public var inUse: Bool { accounts > 0 || deks > 0 }
}

/// The latest report of every host, kept by the service.
public protocol HostUsageBook: Sendable {
    /// Keeps `report` as its host's latest (replacing the one before).
    func store(_ report: HostUsageReport) throws
    /// The latest report of every host.
    func reports() throws -> [HostUsageReport]
}

extension HostUsageBook {
    /// Each version of `key` that some host reported, with totals over hosts, by version id.
    public func usage(of key: String, at now: Date) throws -> [KeyVersionUsage] {
        var byVersion: [String: KeyVersionUsage] = [:]
        for report in try reports() where report.key == key.lowercased() {
            for count in report.versions where count.accounts > 0 || count.deks > 0 {
                var usage = byVersion[count.version] ?? KeyVersionUsage(version: count.version, accounts: 0, deks: 0, hosts: [], staleHosts: [])
                usage.accounts += count.accounts
                usage.deks += count.deks
                usage.hosts.append(report.host)
                if report.isStale(at: now) { usage.staleHosts.append(report.host) }
                byVersion[count.version] = usage
            }
        }
        return byVersion.values.map { usage in
            var usage = usage
            let stale = Set(usage.staleHosts)
            usage.hosts = usage.hosts.filter { !stale.contains($0) }.sorted() + usage.staleHosts.sorted()
            usage.staleHosts.sort()
            return usage
        }.sorted { $0.version < $1.version }
    }
}
