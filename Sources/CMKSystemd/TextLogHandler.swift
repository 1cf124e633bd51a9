import Foundation
import Logging

/// Readable lines on stderr (a terminal) or JSON lines (`--log-format json`). A line that cannot
/// be written (full disk, `ulimit -f`, closed reader) is dropped and counted, never fatal
/// (``StandardError``).
public struct TextLogHandler: LogHandler {
    public enum Style: Sendable { case text, json }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public let label: String
    public let style: Style

    public init(label: String, style: Style) {
        self.label = label
        self.style = style
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let time = Date().ISO8601Format(.iso8601.year().month().day().time(includingFractionalSeconds: true))
        let line: String
        switch style {
        case .text:
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line = "\(time) \(event.level.rawValue.uppercased()) \(event.message)\(fields.isEmpty ? "" : "  " + fields)\n"
        case .json:
            var object: [String: String] = ["time": time, "level": event.level.rawValue, "message": "\(event.message)", "logger": label]
            for (key, value) in merged { object[key] = "\(value)" }
            line = Self.json(object)
        }
        StandardError.write(line) { dropped in
            switch style {
            case .text: return "\(time) WARNING Log lines could not be written to stderr and were dropped.  dropped=\(dropped)\n"
            case .json: return Self.json(["time": time, "level": "warning", "logger": label, "dropped": "\(dropped)",
                                          "message": "Log lines could not be written to stderr and were dropped."])
            }
        }
    }

    static func json(_ object: [String: String]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
