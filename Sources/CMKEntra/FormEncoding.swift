import Foundation

/// `application/x-www-form-urlencoded`, as the token endpoint receives it.
public enum FormEncoding {
    /// The fields of `text`; a name given twice keeps its first value.
    public static func decode(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decodeComponent(parts[0])
            let value = parts.count > 1 ? decodeComponent(parts[1]) : ""
            if result[name] == nil { result[name] = value }
        }
        return result
    }

    /// The names that appear more than once in `text` (a strict endpoint refuses them).
    public static func repeatedNames(_ text: String) -> [String] {
        var seen = Set<String>(), repeated: [String] = []
        for pair in text.split(separator: "&") {
            let name = decodeComponent(pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0])
            if !seen.insert(name).inserted, !repeated.contains(name) { repeated.append(name) }
        }
        return repeated
    }

    private static func decodeComponent(_ part: Substring) -> String {
        let plus = part.replacingOccurrences(of: "+", with: " ")
        return plus.removingPercentEncoding ?? plus
    }
}
