import Foundation

/// One measured figure, with its anchor (measured in the same run) and its target if it has one.
struct Figure: Codable, Sendable {
    var suite: String
    var name: String
    var value: Double
    var unit: String
    var anchor: Double?
    var anchorName: String?
    /// value ÷ anchor.
    var ratio: Double?
    /// What the figure must meet, in words ("ratio ≥ 0.8", "≤ 1 s", "= 1").
    var target: String?
    /// Whether it met the target (nil: no target).
    var met: Bool?
    var detail: [String: Double]

    /// A figure compared with an anchor; `target` is the least acceptable ratio.
    init(suite: String, name: String, value: Double, unit: String, anchor: Double?, anchorName: String?,
         target: Double?, detail: [String: Double] = [:]) {
        self.init(suite: suite, name: name, value: value, unit: unit, anchor: anchor, anchorName: anchorName, detail: detail)
        if let target {
            self.target = "ratio ≥ \(target)"
            met = ratio.map { $0 >= target }
        }
    }

    /// A figure with an absolute limit (`value ≤ maximum`) or an exact expectation.
    init(suite: String, name: String, value: Double, unit: String, maximum: Double? = nil, exactly: Double? = nil,
         anchor: Double? = nil, anchorName: String? = nil, detail: [String: Double] = [:]) {
        self.suite = suite
        self.name = name
        self.value = value
        self.unit = unit
        self.anchor = anchor
        self.anchorName = anchorName
        self.ratio = anchor.map { value / $0 }
        self.detail = detail
        if let maximum {
            target = "≤ \(Results.format(maximum, unit))"
            met = value <= maximum
        } else if let exactly {
            target = "= \(Results.format(exactly, unit))"
            met = value == exactly
        } else {
            target = nil
            met = nil
        }
    }
}

/// Everything one run measured, with the machine it ran on.
struct Results: Codable, Sendable {
    var started: Date
    var mode: String
    var machine: [String: String]
    var figures: [Figure] = []
    var notes: [String] = []

    mutating func add(_ figure: Figure) {
        figures.append(figure)
        print(Self.row(figure))
        fflush(nil)
    }

    static func header() -> String {
        pad("figure", 58) + pad("value", 14, right: true) + "  " + pad("anchor", 14, right: true) + pad("ratio", 8, right: true) + "  target"
    }

    static func row(_ f: Figure) -> String {
        let anchor = f.anchor.map { format($0, f.unit) } ?? "-"
        let ratio = f.ratio.map { String(format: "%.2f×", $0) } ?? "-"
        let verdict = f.target.map { t in "\(t) \(f.met == true ? "ok" : "MISSED")" } ?? ""
        return pad("[\(f.suite)] \(f.name)", 58) + pad(format(f.value, f.unit), 14, right: true) + "  "
            + pad(anchor, 14, right: true) + pad(ratio, 8, right: true) + "  " + verdict
    }

    /// Human-readable value with its unit (B/s in MiB/s, bytes in MiB, seconds in s or ms).
    static func format(_ value: Double, _ unit: String) -> String {
        switch unit {
        case "B/s": return String(format: "%.0f MiB/s", value / 1_048_576)
        case "B": return String(format: "%.1f MiB", value / 1_048_576)
        case "s": return value < 1 ? String(format: "%.1f ms", value * 1000) : String(format: "%.2f s", value)
        case "ms": return String(format: "%.3f ms", value)
        case "op/s": return String(format: "%.0f/s", value)
        default: return value == value.rounded() && abs(value) < 1e15 ? "\(Int(value)) \(unit)" : String(format: "%.2f %@", value, unit)
        }
    }

    static func size(_ bytes: Int) -> String {
        bytes >= 1 << 20 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB"
    }

    private static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let gap = max(0, width - text.count)
        return right ? String(repeating: " ", count: gap) + text : text + String(repeating: " ", count: gap)
    }

    /// Writes the results as JSON to `directory/<timestamp>.json` and returns the path.
    func write(to directory: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let stamp = ISO8601DateFormatter().string(from: started).replacingOccurrences(of: ":", with: "")
        let path = "\(directory)/\(stamp)-\(mode).json"
        try encoder.encode(self).write(to: URL(fileURLWithPath: path))
        return path
    }
}
