import CMKTesting
import Foundation

/// Builds a `promtool test rules` file for packaging/cmk-syncer.rules.yml from the scrapes of a
/// real run (MetricsDaemonTests): each scrape becomes a phase of the test's timeline (one sample a
/// minute) holding that scrape's values. Timestamps are moved from the run's wall clock onto the
/// test's clock (a value `t` scraped at wall time `W` in a phase that starts at minute `M` becomes
/// `t - W + 60 M`), so ages and time left stay what they were in the run. In a phase marked
/// `repeating` the counters keep growing each minute by what they grew before that scrape, as a
/// daemon whose passes and probes keep meeting the same vault would.
struct AlertRulesTestFile {
    struct Phase {
        var name: String
        var scrape: PrometheusScrape
        var scrapedAt: Date
        var minutes: Int
        var repeating = false
    }

    struct Expectation {
        var minute: Int
        var alerts: [String]
    }

    /// The series the rules read.
    static let series = [
        "cmk_syncer_pass_outcome", "cmk_syncer_vault_requests_total", "cmk_syncer_key_pulled", "cmk_syncer_key_versions_disabled_in_use",
        "cmk_syncer_key_current_version_expiry_timestamp_seconds", "cmk_syncer_last_successful_pass_timestamp_seconds",
        "cmk_syncer_pass_interval_seconds", "process_start_time_seconds",
    ]
    static let target = ["job": "cmk-syncer", "instance": "host-1"]

    var phases: [Phase]
    var expectations: [Expectation]

    /// The alerts' annotations as the rules file writes them, `{{ $labels.instance }}` filled in.
    static func annotations(rules: String) -> [String: [(String, String)]] {
        var result: [String: [(String, String)]] = [:]
        var current: String?
        for line in rules.split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("- alert: ") { current = String(text.dropFirst(9)) }
            for key in ["summary", "description"] where text.hasPrefix(key + ": \"") {
                let value = String(text.dropFirst(key.count + 3).dropLast()).replacingOccurrences(of: "{{ $labels.instance }}", with: target["instance"]!)
                if let current { result[current, default: []].append((key, value)) }
            }
        }
        return result
    }

    static func severity(rules: String) -> [String: String] {
        var result: [String: String] = [:]
        var current: String?
        for line in rules.split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("- alert: ") { current = String(text.dropFirst(9)) }
            if text.hasPrefix("severity: "), let current { result[current] = String(text.dropFirst(10)) }
        }
        return result
    }

    static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    func render(rulesFile: String, rules: String, header: String) -> String {
        var types: [String: String] = [:]
        for phase in phases {
            for line in phase.scrape.text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                types[String(parts[2])] = String(parts[3])
            }
        }
        // Every label set of the wanted series seen in any scrape.
        var keys: [String: [String: String]] = [:]
        for phase in phases {
            for sample in phase.scrape.samples where Self.series.contains(sample.name) {
                let labels = sample.labels.merging(Self.target) { $1 }
                let text = sample.name + "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",") + "}"
                keys[text] = sample.labels.merging(["__name__": sample.name]) { $1 }
            }
        }
        var lines = [header, "rule_files: [\(rulesFile)]", "evaluation_interval: 1m", "tests:", "  - interval: 1m", "    input_series:"]
        for (text, labels) in keys.sorted(by: { $0.key < $1.key }) {
            let name = labels["__name__"]!
            var own = labels
            own["__name__"] = nil
            var values: [String] = []
            var start = 0
            var previous: Double?
            for phase in phases {
                let value = phase.scrape.value(name, own)
                for minute in 0..<phase.minutes {
                    guard var value else { values.append("_"); continue }
                    if name.hasSuffix("_timestamp_seconds") || name == "process_start_time_seconds" {
                        value = max(0, value - phase.scrapedAt.timeIntervalSince1970 + Double(start * 60))
                    } else if types[name] == "counter", phase.repeating {
                        // A counter first seen in this phase grew from 0.
                        value += (value - (previous ?? 0)) * Double(minute)
                    }
                    values.append(value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value))
                }
                previous = value ?? previous
                start += phase.minutes
            }
            lines.append("      - series: '\(text)'")
            lines.append("        values: '\(values.joined(separator: " "))'")
        }
        lines.append("    alert_rule_test:")
        let annotations = Self.annotations(rules: rules)
        let severities = Self.severity(rules: rules)
        let names = Array(annotations.keys).sorted()
        for expectation in expectations {
            for name in names {
                lines.append("      - eval_time: \(expectation.minute)m")
                lines.append("        alertname: \(name)")
                guard expectation.alerts.contains(name) else { lines.append("        exp_alerts: []"); continue }
                lines.append("        exp_alerts:")
                var labels = Self.target
                labels["severity"] = severities[name]
                if name == "CMKSyncerPassFailing" { labels["outcome"] = "degraded" }
                lines.append("          - exp_labels: {" + labels.sorted { $0.key < $1.key }.map { "\($0.key): \(Self.quoted($0.value))" }.joined(separator: ", ") + "}")
                lines.append("            exp_annotations:")
                for (key, value) in annotations[name] ?? [] { lines.append("              \(key): \(Self.quoted(value))") }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
