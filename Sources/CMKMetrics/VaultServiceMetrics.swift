import CoreMetrics
import Foundation

/// cmk-vault's metrics (docs/metrics.md, "The vault service"): token issues and refusals, the
/// failure throttle's refusals, HTTPS requests by route pattern and status, keys API operations by
/// caller, and at each scrape the security log's size and the process. Recording is a lock and an
/// add (swift-metrics handles over swift-prometheus's registry); nothing here holds a token, a
/// secret, a key or a raw path.
public final class VaultServiceMetrics: Sendable {
    /// Why a token was not issued once the request's form was read (the closed set of `reason`).
    public enum TokenFailure: String, Sendable, CaseIterable {
        case unknownClient = "unknown-client"
        case badSecret = "bad-secret"
        case revoked
        case expired
        case notYetValid = "not-yet-valid"
        /// The failure throttle refused the attempt (429).
        case throttled
        /// The security log could not record the issue: no token left (503).
        case notRecorded = "not-recorded"
    }

    /// Where the failure throttle refused a request.
    public enum ThrottledEndpoint: String, Sendable, CaseIterable {
        /// The token endpoint or the console's sign-in.
        case token
        /// A route that takes a bearer token (management, security log, keys API), by source address.
        case bearer
    }

    /// The `role` label values.
    public static let roles = ["administrator", "service-principal", "platform"]
    /// HTTP methods kept as label values; any other is `other` (a client chooses the method).
    static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    public let factory: CatalogueMetricsFactory
    private let process: ProcessMetricsCollector

    public init(factory: CatalogueMetricsFactory = CatalogueMetricsFactory()) {
        self.factory = factory
        process = ProcessMetricsCollector(factory: factory)
        // Series an alert expects before the first request: zeros, not absence.
        for role in Self.roles { factory.counter(MetricCatalogue.vaultTokensIssued, ["role": role]).increment(by: 0) }
        for reason in TokenFailure.allCases { factory.counter(MetricCatalogue.vaultTokenFailures, ["reason": reason.rawValue]).increment(by: 0) }
        for endpoint in ThrottledEndpoint.allCases { factory.counter(MetricCatalogue.vaultThrottleRefusals, ["endpoint": endpoint.rawValue]).increment(by: 0) }
    }

    /// A token was issued to a caller of `role` (one of ``roles``).
    public func tokenIssued(role: String) {
        factory.counter(MetricCatalogue.vaultTokensIssued, ["role": role]).increment()
    }

    public func tokenFailed(_ reason: TokenFailure) {
        factory.counter(MetricCatalogue.vaultTokenFailures, ["reason": reason.rawValue]).increment()
    }

    public func throttleRefused(_ endpoint: ThrottledEndpoint) {
        factory.counter(MetricCatalogue.vaultThrottleRefusals, ["endpoint": endpoint.rawValue]).increment()
    }

    /// A request answered: `route` is the router's pattern (nil: no route matched), never the path.
    public func httpRequest(route: String?, method: String, status: Int, seconds: Double) {
        let route = route ?? "unmatched"
        let method = Self.methods.contains(method) ? method : "other"
        factory.counter(MetricCatalogue.vaultHTTPRequests, ["route": route, "method": method, "code": "\(status)"]).increment()
        factory.timer(MetricCatalogue.vaultHTTPDuration, ["route": route]).recordSeconds(max(0, seconds))
    }

    /// A keys API request of an authenticated caller: `operation` from a closed set (the caller
    /// picks the path, so the routes map it), `clientID` a registered principal's, `status` the answer's.
    public func keyOperation(_ operation: String, clientID: String, role: String, status: Int) {
        let outcome = (200..<300).contains(status) ? "ok" : status >= 500 ? "error" : "refused"
        factory.counter(MetricCatalogue.vaultKeyOperations, ["operation": operation, "client_id": clientID, "role": role, "outcome": outcome]).increment()
    }

    /// Brings the pulled values up to date (the security log's size, the process), then returns
    /// the text exposition (format 0.0.4) of every metric.
    public func exposition(securityLog: () -> (records: UInt64?, bytes: UInt64?)) -> [UInt8] {
        let size = securityLog()
        if let records = size.records { factory.gauge(MetricCatalogue.vaultSecurityLogRecords).record(Double(records)) }
        if let bytes = size.bytes { factory.gauge(MetricCatalogue.vaultSecurityLogBytes).record(Double(bytes)) }
        process.collect()
        return factory.registry.emitToBuffer()
    }
}
