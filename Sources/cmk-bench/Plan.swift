/// How much a run measures: `--quick` (under 5 minutes after the build) or the full run.
struct Plan: Sendable {
    var mode: String
    /// Seconds per envelope or RSA figure (split into 5 repetitions, after a warm-up).
    var cryptoSeconds: Double
    /// `openssl speed -seconds` per anchor.
    var opensslSeconds: Int
    var idleAccounts: [Int]
    /// (driver, accounts, concurrency) of each rotation pass.
    var rotations: [(SyncWorld.Driver, Int, Int)]
    var latencySamples: Int
    var reencryptObjects: Int
    var daemonAccounts: [Int]
    /// Seconds of idle RSS and CPU observation after READY.
    var daemonIdleWindow: Double
    var daemonReadyTimeout: Double
    /// Seconds of load per HTTPS figure of the vault service (after a 1 s warm-up), and its concurrency.
    var vaultHTTPSeconds: Double
    var vaultConcurrency: Int
    /// Records appended to the security log before its page and proof figures.
    var vaultLogRecords: Int
    /// Timed repetitions of each page, proof and checkpoint figure (p50 reported).
    var vaultLogRepetitions: Int
    /// Concurrencies of the unwrap figures through cmk-vault's keys API (suite keys).
    var keysConcurrency = [1, 16]
    /// Accounts rotated across three daemons on cmk-vault under its 2,000-per-10 s limit
    /// (`--fleet-accounts`; 10,000 is the documented figure).
    var fleetAccounts = 10_000
    /// Tries per vault call under throttling in rotation passes (`--throttle-attempts`; 1 shows the behaviour without retries).
    var throttleAttempts = 8
    /// Passes per daemon (metrics on, metrics off) in the metrics suite, alternating.
    var metricsRounds: Int { mode == "quick" ? 5 : 15 }

    static let quick = Plan(
        mode: "quick", cryptoSeconds: 1, opensslSeconds: 1, idleAccounts: [10, 1_000, 10_000],
        rotations: [(.memory, 1_000, 1), (.memory, 1_000, 4), (.memory, 1_000, 16), (.directory, 1_000, 16), (.sqlite, 1_000, 16)],
        latencySamples: 200, reencryptObjects: 200, daemonAccounts: [5, 10_000], daemonIdleWindow: 10, daemonReadyTimeout: 600,
        vaultHTTPSeconds: 4, vaultConcurrency: 16, vaultLogRecords: 100_000, vaultLogRepetitions: 21)

    static let full = Plan(
        mode: "full", cryptoSeconds: 5, opensslSeconds: 3, idleAccounts: [10, 1_000, 10_000],
        rotations: SyncWorld.Driver.allCases.flatMap { driver in [1, 4, 16].map { (driver, 1_000, $0) } } + [(.memory, 10_000, 16)],
        latencySamples: 1_000, reencryptObjects: 1_000, daemonAccounts: [5, 10_000], daemonIdleWindow: 60, daemonReadyTimeout: 1_200,
        vaultHTTPSeconds: 15, vaultConcurrency: 16, vaultLogRecords: 1_000_000, vaultLogRepetitions: 101)
}
