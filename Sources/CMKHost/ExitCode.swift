import CMKSyncer

/// Exit codes shared by `cmk-syncer` and `cmkctl`, documented in the README and `--help`.
public enum CMKExitCode {
    public static let ok: Int32 = 0
    /// Something failed (including a critical pass: key missing, version disabled in use).
    public static let failure: Int32 = 1
    /// Bad command-line usage.
    public static let usage: Int32 = 2
    /// Not every account is in sync (degraded).
    public static let notInSync: Int32 = 3
    /// The key is pulled or an account is suspended.
    public static let pulled: Int32 = 4
    /// The configuration is invalid (EX_CONFIG); systemd does not restart on it.
    public static let configuration: Int32 = 78

    /// The exit code that describes a pass.
    public static func forReport(_ report: SyncReport) -> Int32 {
        switch report.state {
        case .ok: return report.accounts.contains { $0.suspended } ? pulled : ok
        case .degraded: return notInSync
        case .keyPulled: return pulled
        case .critical: return failure
        }
    }
}
