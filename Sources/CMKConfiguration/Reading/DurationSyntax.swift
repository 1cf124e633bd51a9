/// Durations in the configuration: one whole number and one unit (`ms`, `s`, `m`, `h`, `d`),
/// such as `500ms`, `90s`, `15m`, `1h`, `14d`. No spaces, signs, fractions or combined units.
public enum DurationSyntax {
    public static let hint = "use one whole number and one unit of ms, s, m, h, d; examples: 500ms, 90s, 15m, 14d"

    public static func parse(_ text: String) -> Duration? {
        let digits = text.prefix { $0 >= "0" && $0 <= "9" }
        let unit = text.dropFirst(digits.count)
        guard (1...12).contains(digits.count), let value = Int64(digits) else { return nil }
        switch unit {
        case "ms": return .milliseconds(value)
        case "s": return .seconds(value)
        case "m": return .seconds(value * 60)
        case "h": return .seconds(value * 3600)
        case "d": return .seconds(value * 86_400)
        default: return nil
        }
    }

    /// The shortest exact spelling of `duration` in the configuration syntax (`900s` → `15m`).
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds != 0 || seconds == 0 {
            return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000)ms"
        }
        for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60)] where seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }
}
