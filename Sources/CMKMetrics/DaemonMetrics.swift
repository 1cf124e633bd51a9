import CMKCore
import CMKEnvelope
import CMKSyncer
import CoreMetrics
import Foundation
import Synchronization

/// The daemon's metrics (docs/metrics.md): what each pass's report says, every vault call (as the
/// process's ``VaultObserver``), and at each scrape the DEK cache, the key-state probe and the
/// process. Recording never blocks: swift-metrics handles over swift-prometheus's locked registry.
public final class DaemonMetrics: VaultObserver, Sendable {
    public let factory: CatalogueMetricsFactory

    private struct State {
        /// Label sets of `cmk_syncer_accounts` set by a pass: the next pass sets those it does not see to 0.
        var accountSeries: Set<[String]> = []
        var cache: (identity: ObjectIdentifier, statistics: DEKCache.Statistics)?
        var probe: ProbeStatus?
        var lastSuccess: Date?
    }

    private let state = Mutex(State())
    private let process: ProcessMetricsCollector

    public init(factory: CatalogueMetricsFactory = CatalogueMetricsFactory()) {
        self.factory = factory
        process = ProcessMetricsCollector(factory: factory)
        // Series an alert expects before the first pass: zeros, not absence.
        for outcome in OverallState.allMetricLabels {
            factory.counter(MetricCatalogue.passes, ["outcome": outcome]).increment(by: 0)
            factory.gauge(MetricCatalogue.passOutcome, ["outcome": outcome]).record(0)
        }
        factory.gauge(MetricCatalogue.keyPulled).record(0)
        factory.gauge(MetricCatalogue.lastSuccessfulPass).record(0)
        factory.counter(MetricCatalogue.throttlePause).increment(by: 0)
        for layer in VaultRetryLayer.allCases { factory.counter(MetricCatalogue.vaultRetries, ["layer": layer.rawValue]).increment(by: 0) }
    }

    // MARK: Passes

    /// A pass finished with `report`; `interval` is the time to the next pass now in force.
    public func passFinished(_ report: SyncReport, interval: Duration) {
        let outcome = report.state.rawValue
        factory.counter(MetricCatalogue.passes, ["outcome": outcome]).increment()
        for other in OverallState.allMetricLabels { factory.gauge(MetricCatalogue.passOutcome, ["outcome": other]).record(other == outcome ? 1 : 0) }
        factory.timer(MetricCatalogue.passDuration).recordSeconds(max(0, report.finished.timeIntervalSince(report.started)))
        factory.gauge(MetricCatalogue.lastPassStart).record(report.started.timeIntervalSince1970)
        factory.gauge(MetricCatalogue.lastPassEnd).record(report.finished.timeIntervalSince1970)
        if report.state == .ok { factory.gauge(MetricCatalogue.lastSuccessfulPass).record(report.finished.timeIntervalSince1970) }
        factory.gauge(MetricCatalogue.passInterval).record(interval.timeInterval)
        if report.retries > 0 { factory.counter(MetricCatalogue.vaultRetries, ["layer": VaultRetryLayer.pass.rawValue]).increment(by: Double(report.retries)) }

        var series: [[String]: Int] = [:]
        for account in report.accounts {
            let reason = account.outcome.code == .failed ? (account.outcome.reason ?? "unknown") : "none"
            series[[account.outcome.code.rawValue, account.kind.rawValue, reason], default: 0] += 1
        }
        let stale = state.withLock { state -> Set<[String]> in
            defer { state.accountSeries = Set(series.keys) }
            return state.accountSeries.subtracting(series.keys)
        }
        for key in stale { factory.gauge(MetricCatalogue.accounts, Self.accountLabels(key)).record(0) }
        for (key, count) in series { factory.gauge(MetricCatalogue.accounts, Self.accountLabels(key)).record(count) }
        let rebound = report.accounts.filter { $0.outcome.code == .rebound }.count
        let suspended = report.accounts.filter { account in account.suspendedSince.map { $0 >= report.started } ?? false }.count
        factory.counter(MetricCatalogue.rebinds).increment(by: Double(rebound))
        factory.counter(MetricCatalogue.suspensions).increment(by: Double(suspended))

        factory.gauge(MetricCatalogue.keyPulled).record(report.state == .keyPulled ? 1 : 0)
        if let current = report.versions.first(where: \.current) {
            if let created = current.created { factory.gauge(MetricCatalogue.currentVersionCreated).record(created.timeIntervalSince1970) }
            let expiry = factory.gauge(MetricCatalogue.currentVersionExpiry)
            if let expires = current.expires { expiry.record(expires.timeIntervalSince1970) } else { expiry.destroy() }
        }
        if report.currentVersion != nil || !report.versions.isEmpty {
            factory.gauge(MetricCatalogue.versionsReferenced).record(report.versions.filter { !$0.accounts.isEmpty }.count)
            factory.gauge(MetricCatalogue.versionsSafeToDisable).record(report.versions.filter(\.safeToDisable).count)
            factory.gauge(MetricCatalogue.versionsDisabledInUse).record(report.versions.filter { $0.enabled == false && !$0.accounts.isEmpty }.count)
        }
    }

    private static func accountLabels(_ key: [String]) -> [String: String] {
        ["state": key[0], "kind": key[1], "reason": key[2]]
    }

    // MARK: VaultObserver

    public func vaultCall(_ operation: String, outcome: VaultCallOutcome, seconds: Double) {
        factory.counter(MetricCatalogue.vaultRequests, ["operation": operation, "outcome": outcome.rawValue]).increment()
        factory.timer(MetricCatalogue.vaultRequestDuration, ["operation": operation]).recordSeconds(max(0, seconds))
    }

    public func vaultRetry(_ layer: VaultRetryLayer) {
        factory.counter(MetricCatalogue.vaultRetries, ["layer": layer.rawValue]).increment()
    }

    public func vaultThrottlePaused(seconds: Double) {
        factory.counter(MetricCatalogue.throttlePause).increment(by: max(0, seconds))
    }

    // MARK: Scrape

    /// Brings the pulled values up to date (the DEK cache, the probe's counts, the process), then
    /// returns the text exposition (format 0.0.4) of every metric.
    public func exposition(cache: DEKCache?, probe: ProbeStatus?) -> [UInt8] {
        if let cache { collect(cache: cache) }
        if let probe { collect(probe: probe) }
        process.collect()
        return factory.registry.emitToBuffer()
    }

    /// Counters from a cumulative source: the growth since the last look (all of it after a reset,
    /// e.g. a new cache after SIGHUP).
    private static func growth(_ now: Int, _ before: Int?) -> Double {
        guard let before, now >= before else { return Double(now) }
        return Double(now - before)
    }

    private func collect(cache: DEKCache) {
        let statistics = cache.statistics
        let identity = ObjectIdentifier(cache)
        let before = state.withLock { state -> DEKCache.Statistics? in
            defer { state.cache = (identity, statistics) }
            return state.cache?.identity == identity ? state.cache?.statistics : nil
        }
        factory.counter(MetricCatalogue.dekCacheHits).increment(by: Self.growth(statistics.hits, before?.hits))
        factory.counter(MetricCatalogue.dekCacheMisses).increment(by: Self.growth(statistics.misses, before?.misses))
        factory.counter(MetricCatalogue.dekCacheEvictions).increment(by: Self.growth(statistics.evictions, before?.evictions))
        factory.gauge(MetricCatalogue.dekCacheEntries).record(statistics.entries)
    }

    private func collect(probe: ProbeStatus) {
        let before = state.withLock { state -> ProbeStatus? in
            defer { state.probe = probe }
            return state.probe
        }
        factory.counter(MetricCatalogue.probes, ["result": "good"]).increment(by: Self.growth(probe.good, before?.good))
        factory.counter(MetricCatalogue.probes, ["result": "fault"]).increment(by: Self.growth(probe.faults, before?.faults))
        factory.counter(MetricCatalogue.probes, ["result": "skipped"]).increment(by: Self.growth(probe.skipped, before?.skipped))
        factory.counter(MetricCatalogue.probePasses).increment(by: Self.growth(probe.passesStarted, before?.passesStarted))
    }
}

extension OverallState {
    /// Every overall state, as `outcome` label values.
    static let allMetricLabels = ["ok", "degraded", "key-pulled", "critical"]
}
