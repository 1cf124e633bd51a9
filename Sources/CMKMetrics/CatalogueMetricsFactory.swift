import CoreMetrics
import Prometheus

/// swift-metrics' factory over a swift-prometheus registry, with each metric's help text and
/// buckets taken from ``MetricCatalogue``: the daemon's code uses swift-metrics' `Counter`, `Gauge`,
/// `Timer` and `FloatingPointCounter`, and the exposition carries `# HELP` and `# TYPE` for every
/// family (swift-prometheus's own factory emits no help, which `promtool check metrics` rejects).
public struct CatalogueMetricsFactory: MetricsFactory, Sendable {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    /// The catalogue's definition, or a stand-in for a name it lacks (a test keeps that from happening).
    private func descriptor(_ label: String) -> (MetricNameDescriptor, MetricDefinition?) {
        let definition = MetricCatalogue.definition(label)
        return (MetricNameDescriptor(metricName: label, unitName: "", helpText: definition?.help ?? "Not in the metric catalogue."), definition)
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label).0, labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label).0, labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        let (descriptor, definition) = descriptor(label)
        guard aggregate else { return registry.makeGauge(descriptor: descriptor, labels: dimensions) }
        return registry.makeValueHistogram(descriptor: descriptor, labels: dimensions, buckets: definition?.buckets ?? [1])
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label).0, labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let (descriptor, definition) = descriptor(label)
        let buckets = (definition?.buckets ?? [1]).map { Duration.nanoseconds(Int64(($0 * 1e9).rounded())) }
        return registry.makeDurationHistogram(descriptor: descriptor, labels: dimensions, buckets: buckets)
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
