/// Every metric the daemon and cmk-vault export, in one place (cmk-vault's in MetricCatalogue+VaultService.swift): name, type, help and label names
/// (docs/metrics.md is the operator's copy; `MetricsDocumentationTests` holds the two together).
///
/// Naming follows Prometheus's conventions: the `cmk_syncer_` prefix, base units (`_seconds`,
/// `_bytes`), `_total` on counters only, timestamps as Unix seconds (`_timestamp_seconds`).
/// Labels stay low-cardinality: no account name, key version, URL or message is ever a label.
public struct MetricDefinition: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case counter, gauge, histogram
    }

    public var name: String
    public var kind: Kind
    public var help: String
    public var labels: [String]
    /// Upper bounds (seconds) of a histogram's buckets.
    public var buckets: [Double]

    init(_ name: String, _ kind: Kind, _ help: String, labels: [String] = [], buckets: [Double] = []) {
        self.name = name
        self.kind = kind
        self.help = help
        self.labels = labels
        self.buckets = buckets
    }
}

public enum MetricCatalogue {
    // MARK: Passes
    public static let passes = MetricDefinition("cmk_syncer_passes_total", .counter,
        "Sync passes finished, by overall outcome (ok, degraded, key-pulled, critical).", labels: ["outcome"])
    public static let passDuration = MetricDefinition("cmk_syncer_pass_duration_seconds", .histogram,
        "How long a sync pass took, from its start to its report.", buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600])
    public static let lastPassStart = MetricDefinition("cmk_syncer_last_pass_start_timestamp_seconds", .gauge,
        "When the last finished sync pass started (Unix time).")
    public static let lastPassEnd = MetricDefinition("cmk_syncer_last_pass_end_timestamp_seconds", .gauge,
        "When the last sync pass finished (Unix time), whatever its outcome.")
    public static let lastSuccessfulPass = MetricDefinition("cmk_syncer_last_successful_pass_timestamp_seconds", .gauge,
        "When the last sync pass with outcome ok finished (Unix time); 0 until one has.")
    public static let passInterval = MetricDefinition("cmk_syncer_pass_interval_seconds", .gauge,
        "The configured time between passes now in force (sync.interval, or sync.pulled-poll-interval while the key is pulled).")
    public static let passOutcome = MetricDefinition("cmk_syncer_pass_outcome", .gauge,
        "1 for the outcome of the last sync pass, 0 for the others.", labels: ["outcome"])

    // MARK: Accounts
    public static let accounts = MetricDefinition("cmk_syncer_accounts", .gauge,
        "Accounts by their outcome in the last pass (in-sync, rebound, suspended, failed, not-reached, handled-elsewhere), storage kind and failure reason (none unless failed).",
        labels: ["state", "kind", "reason"])
    public static let rebinds = MetricDefinition("cmk_syncer_account_rebinds_total", .counter,
        "Accounts rebound to a new key version, summed over passes.")
    public static let suspensions = MetricDefinition("cmk_syncer_account_suspensions_total", .counter,
        "Accounts newly suspended by a pass (the key was pulled), summed over passes.")

    // MARK: Key and versions
    public static let keyPulled = MetricDefinition("cmk_syncer_key_pulled", .gauge,
        "1 while the last pass found the key pulled (deleted in the vault), else 0.")
    public static let currentVersionCreated = MetricDefinition("cmk_syncer_key_current_version_created_timestamp_seconds", .gauge,
        "When the key's current version was created (Unix time); absent until a pass has read the key.")
    public static let currentVersionExpiry = MetricDefinition("cmk_syncer_key_current_version_expiry_timestamp_seconds", .gauge,
        "When the key's current version expires (Unix time); absent when it has no expiry or no pass has read the key.")
    public static let versionsReferenced = MetricDefinition("cmk_syncer_key_versions_referenced", .gauge,
        "Key versions that still wrap at least one account's data key (DEK).")
    public static let versionsSafeToDisable = MetricDefinition("cmk_syncer_key_versions_safe_to_disable", .gauge,
        "Old key versions no account has referenced for sync.backup-retention: disabling them breaks nothing.")
    public static let versionsDisabledInUse = MetricDefinition("cmk_syncer_key_versions_disabled_in_use", .gauge,
        "Key versions disabled in the vault while accounts still reference them (data at risk).")

    // MARK: Vault
    public static let vaultRequests = MetricDefinition("cmk_syncer_vault_requests_total", .counter,
        "Vault calls by operation (snapshot, public-key, wrap, unwrap) and outcome (ok, throttled, unreachable, denied, refused, error).",
        labels: ["operation", "outcome"])
    public static let vaultRequestDuration = MetricDefinition("cmk_syncer_vault_request_duration_seconds", .histogram,
        "How long a vault call took, the provider's own retries included.", labels: ["operation"],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])
    public static let vaultRetries = MetricDefinition("cmk_syncer_vault_retries_total", .counter,
        "Vault calls tried again, by layer: request (the provider's HTTP retry), throttle (after a 429), pass (the pass's snapshot).",
        labels: ["layer"])
    public static let throttlePause = MetricDefinition("cmk_syncer_vault_throttle_pause_seconds_total", .counter,
        "Time the process-wide vault throttle paused every vault call after 429 answers.")

    // MARK: Probe
    public static let probes = MetricDefinition("cmk_syncer_probes_total", .counter,
        "Key-state probes between passes by result: good (the vault answered), fault (it did not), skipped (a pass ran or the throttle paused).",
        labels: ["result"])
    public static let probePasses = MetricDefinition("cmk_syncer_probe_passes_started_total", .counter,
        "Passes started because a probe saw a key change.")

    // MARK: DEK cache
    public static let dekCacheHits = MetricDefinition("cmk_syncer_dek_cache_hits_total", .counter,
        "Lookups the in-memory cache of unwrapped data keys answered without the vault.")
    public static let dekCacheMisses = MetricDefinition("cmk_syncer_dek_cache_misses_total", .counter,
        "Lookups the cache of unwrapped data keys could not answer (an unwrap in the vault follows).")
    public static let dekCacheEvictions = MetricDefinition("cmk_syncer_dek_cache_evictions_total", .counter,
        "Data keys dropped from the cache (expired, beyond capacity, or purged on a suspension).")
    public static let dekCacheEntries = MetricDefinition("cmk_syncer_dek_cache_entries", .gauge,
        "Unwrapped data keys held in memory now.")

    // MARK: Process (the Prometheus client libraries' standard names)
    public static let processCPU = MetricDefinition("process_cpu_seconds_total", .counter,
        "Total user and system CPU time spent in seconds.")
    public static let processResident = MetricDefinition("process_resident_memory_bytes", .gauge,
        "Resident memory size in bytes.")
    public static let processVirtual = MetricDefinition("process_virtual_memory_bytes", .gauge,
        "Virtual memory size in bytes.")
    public static let processOpenFDs = MetricDefinition("process_open_fds", .gauge,
        "Number of open file descriptors.")
    public static let processMaxFDs = MetricDefinition("process_max_fds", .gauge,
        "Maximum number of open file descriptors.")
    public static let processStart = MetricDefinition("process_start_time_seconds", .gauge,
        "Start time of the process since unix epoch in seconds.")

    /// Every definition, in documentation order.
    public static let all: [MetricDefinition] = [
        passes, passDuration, lastPassStart, lastPassEnd, lastSuccessfulPass, passInterval, passOutcome,
        accounts, rebinds, suspensions,
        keyPulled, currentVersionCreated, currentVersionExpiry, versionsReferenced, versionsSafeToDisable, versionsDisabledInUse,
        vaultRequests, vaultRequestDuration, vaultRetries, throttlePause,
        probes, probePasses,
        dekCacheHits, dekCacheMisses, dekCacheEvictions, dekCacheEntries,
        processCPU, processResident, processVirtual, processOpenFDs, processMaxFDs, processStart,
    ]

    /// The process metrics (the daemon's and cmk-vault's).
    public static let process: [MetricDefinition] = [processCPU, processResident, processVirtual, processOpenFDs, processMaxFDs, processStart]

    static let byName: [String: MetricDefinition] = Dictionary(uniqueKeysWithValues: (all + vaultService.filter { !process.contains($0) }).map { ($0.name, $0) })

    /// The definition of `name`, if it is one of ours.
    public static func definition(_ name: String) -> MetricDefinition? { byName[name] }
}
