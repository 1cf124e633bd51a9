/// cmk-vault's metrics (docs/metrics.md, "The vault service"): the `cmk_vault_` prefix, the same
/// conventions as the daemon's. Label values are closed sets (reasons, roles, outcomes, route
/// patterns, status codes) except `client_id` on key operations, bounded by the principals registered
/// with `cmkctl identities add` (one service principal and one platform identity per host).
extension MetricCatalogue {
    // MARK: Tokens
    public static let vaultTokensIssued = MetricDefinition("cmk_vault_tokens_issued_total", .counter,
        "Access tokens issued (token endpoint and console sign-in), by the caller's role (administrator, service-principal, platform).",
        labels: ["role"])
    public static let vaultTokenFailures = MetricDefinition("cmk_vault_token_failures_total", .counter,
        "Token requests refused after the form was read, by reason (unknown-client, bad-secret, revoked, expired, not-yet-valid, throttled, not-recorded).",
        labels: ["reason"])
    public static let vaultThrottleRefusals = MetricDefinition("cmk_vault_throttle_refusals_total", .counter,
        "Requests the failed-authentication throttle refused with 429, by where (token: the token endpoint and console sign-in, bearer: a bearer-token route).",
        labels: ["endpoint"])

    // MARK: HTTP
    public static let vaultHTTPRequests = MetricDefinition("cmk_vault_http_requests_total", .counter,
        "HTTPS requests answered, by route pattern (never the raw path; unmatched for none), method and status code.",
        labels: ["route", "method", "code"])
    public static let vaultHTTPDuration = MetricDefinition("cmk_vault_http_request_duration_seconds", .histogram,
        "How long the service took to answer a request, by route pattern.", labels: ["route"],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])

    // MARK: Keys API
    public static let vaultKeyOperations = MetricDefinition("cmk_vault_key_operations_total", .counter,
        "Keys API requests by operation (unwrapkey, wrapkey, read, create, ...), caller (client id and role; bounded by the registered principals) and outcome (ok, refused, error).",
        labels: ["operation", "client_id", "role", "outcome"])

    // MARK: Security log
    public static let vaultSecurityLogRecords = MetricDefinition("cmk_vault_security_log_records", .gauge,
        "Records in the security log (the Merkle tree's size).")
    public static let vaultSecurityLogBytes = MetricDefinition("cmk_vault_security_log_bytes", .gauge,
        "Bytes the security log's database takes on disk (the SQLite file and its write-ahead log).")

    /// Every cmk-vault metric, in documentation order (the process metrics are the daemon's).
    public static let vaultService: [MetricDefinition] = [
        vaultTokensIssued, vaultTokenFailures, vaultThrottleRefusals,
        vaultHTTPRequests, vaultHTTPDuration,
        vaultKeyOperations,
        vaultSecurityLogRecords, vaultSecurityLogBytes,
    ] + process
}
