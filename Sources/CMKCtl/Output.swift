import CMKCore
import Foundation

/// Where `cmkctl` writes: results to stdout, diagnostics to stderr, JSON as one document.
enum Output {
    static func error(_ message: String) { stderr("cmkctl: \(message)\n") }

    static func warning(_ message: String) { stderr("cmkctl: warning: \(message)\n") }

    static func stderr(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

    static func raw(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }

    static func line(_ text: String = "") {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Pretty, sorted keys, ISO-8601 dates: the one JSON style of every `--json`.
    static func json(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        var data = try encoder.encode(value)
        data.append(UInt8(ascii: "\n"))
        FileHandle.standardOutput.write(data)
    }

    /// Columns padded to their widest cell.
    static func table(_ header: [String], _ rows: [[String]]) {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        for row in all {
            let cells = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }
            line(cells.joined(separator: "  "))
        }
    }

    static func date(_ date: Date?) -> String { date?.ISO8601Format() ?? "-" }

    /// "12s ago", "in 3m", for the operator's orientation next to absolute times.
    static func relative(_ date: Date, now: Date = Date()) -> String {
        let seconds = Int(now.timeIntervalSince(date).rounded())
        let magnitude = abs(seconds)
        let text: String
        switch magnitude {
        case ..<120: text = "\(magnitude)s"
        case ..<7200: text = "\(magnitude / 60)m"
        case ..<172_800: text = "\(magnitude / 3600)h"
        default: text = "\(magnitude / 86400)d"
        }
        return seconds >= 0 ? "\(text) ago" : "in \(text)"
    }
}

/// Parses the TIME arguments: RFC 3339 (with or without fractional seconds) or `now`, through
/// CMKCore's ``RFC3339`` (not ICU's formatter, which traps on a long fraction).
enum TimeArgument {
    static func parse(_ text: String, option: String) throws -> Date {
        if text == "now" { return Date() }
        if let date = RFC3339.parse(text) { return date }
        throw CtlError("\(option): '\(text.prefix(64))' is not a time: use RFC 3339 (\(RFC3339.acceptedForm)) or 'now'", exitCode: 2)
    }
}
