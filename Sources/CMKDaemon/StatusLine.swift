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
            return "in sync: \(accounts), key \(report.key)\(version)\(next)"
        case .degraded, .keyPulled, .critical:
            return "\(report.state.label): \(report.cause ?? "see journal"); \(accounts)\(next)"
        }
    }

    static func time(_ date: Date) -> String {
        String(date.ISO8601Format().dropFirst(11))
    }
}
