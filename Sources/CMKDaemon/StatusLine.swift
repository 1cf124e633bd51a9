import CMKSyncer
import Foundation

/// The one honest line for `systemctl status` (SPEC §7): state, N/M accounts in sync, key and
/// version, and the next pass or what is wrong.
public enum StatusLine {
    public static func make(_ report: SyncReport) -> String {
        let accounts = "\(report.inSyncCount)/\(report.accounts.count) accounts in sync"
        let version = report.targetVersion.map { " v\($0.prefix(8))" } ?? ""
        let next = report.nextPass.map { "; next pass \(Self.time($0))" } ?? ""
        switch report.state {
        case .ok:
            return "in sync: \(accounts), key \(report.key)\(version)\(Self.expiry(report))\(next)"
        case .degraded, .keyPulled, .critical:
            return "\(report.state.label): \(report.cause ?? "see journal"); \(accounts)\(next)"
        }
    }

    /// " (expires in 12d, 2026-12-17)" while the current version is within `sync.expiry-warning`.
    static func expiry(_ report: SyncReport) -> String {
        guard let expires = report.currentExpires else { return "" }
        let left = expires.timeIntervalSince(report.finished)
        let span = left >= 86_400 ? "in \(Int(left / 86_400))d" : left >= 3600 ? "in \(Int(left / 3600))h" : "within the hour"
        return " (expires \(span), \(expires.ISO8601Format().prefix(10)))"
    }

    static func time(_ date: Date) -> String {
        String(date.ISO8601Format().dropFirst(11))
    }
}
