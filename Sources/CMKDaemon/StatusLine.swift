import CMKSyncer
import Foundation

/// The one honest line for `systemctl status` (SPEC §7): state, N/M accounts in sync, key and
/// version, and the next pass or what is wrong.
public enum StatusLine {
    /// - Parameter probe: the key-state probe's counts; while probes fail, the line says so.
    public static func make(_ report: SyncReport, probe: ProbeStatus? = nil) -> String {
        let accounts = "\(report.inSyncCount)/\(report.accounts.count) accounts in sync"
        let version = report.targetVersion.map { " v\($0.prefix(8))" } ?? ""
        let failing = probe?.failingPhrase.map { "; \($0)" } ?? ""
        let next = report.nextPass.map { "; next pass \(Self.time($0))" }.map { failing + $0 } ?? failing
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
