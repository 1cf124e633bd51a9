/// Makes journal field names valid: `[A-Z0-9_]`, at most 64 characters, no leading digit or
/// underscore (journald drops fields that break these rules, and reserves `_` for trusted fields).
public enum JournalFieldName {
    public static func sanitize(_ name: String) -> String? {
        var out = ""
        for scalar in name.unicodeScalars {
            switch scalar {
            case "a"..."z": out.unicodeScalars.append(Unicode.Scalar(scalar.value - 32)!)
            case "A"..."Z", "0"..."9", "_": out.unicodeScalars.append(scalar)
            default: out.append("_")
            }
        }
        while let first = out.first, first == "_" || first.isNumber { out.removeFirst() }
        if out.count > 64 { out = String(out.prefix(64)) }
        return out.isEmpty ? nil : out
    }
}
