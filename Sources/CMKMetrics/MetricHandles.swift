import CoreMetrics
import Foundation
import Synchronization

/// swift-metrics handles for a catalogue definition, with its labels in the catalogue's order
/// (a label not given is empty). DaemonMetrics and VaultServiceMetrics record through these.
extension CatalogueMetricsFactory {
    private func dimensions(_ definition: MetricDefinition, _ labels: [String: String]) -> [(String, String)] {
        definition.labels.map { ($0, labels[$0] ?? "") }
    }

    func counter(_ definition: MetricDefinition, _ labels: [String: String] = [:]) -> FloatingPointCounter {
        FloatingPointCounter(label: definition.name, dimensions: dimensions(definition, labels), factory: self)
    }

    func gauge(_ definition: MetricDefinition, _ labels: [String: String] = [:]) -> Gauge {
        Gauge(label: definition.name, dimensions: dimensions(definition, labels), factory: self)
    }

    func timer(_ definition: MetricDefinition, _ labels: [String: String] = [:]) -> CoreMetrics.Timer {
        CoreMetrics.Timer(label: definition.name, dimensions: dimensions(definition, labels), factory: self)
    }
}

/// The process metrics (`process_*`), read from /proc/self at each scrape into a factory.
final class ProcessMetricsCollector: Sendable {
    private let factory: CatalogueMetricsFactory
    private let statistics = ProcessStatistics()
    /// The CPU seconds already counted (the counter grows by the difference).
    private let cpuSeconds = Mutex(0.0)

    init(factory: CatalogueMetricsFactory) {
        self.factory = factory
        if let start = statistics.startTime { factory.gauge(MetricCatalogue.processStart).record(start) }
    }

    func collect() {
        let sample = statistics.sample()
        if let cpu = sample.cpuSeconds {
            let growth = cpuSeconds.withLock { counted -> Double in
                defer { counted = max(counted, cpu) }
                return max(0, cpu - counted)
            }
            factory.counter(MetricCatalogue.processCPU).increment(by: growth)
        }
        if let value = sample.residentBytes { factory.gauge(MetricCatalogue.processResident).record(value) }
        if let value = sample.virtualBytes { factory.gauge(MetricCatalogue.processVirtual).record(value) }
        if let value = sample.openFDs { factory.gauge(MetricCatalogue.processOpenFDs).record(value) }
        if let value = sample.maxFDs { factory.gauge(MetricCatalogue.processMaxFDs).record(value) }
    }
}
