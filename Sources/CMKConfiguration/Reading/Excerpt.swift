/// How a value from the configuration file appears in an error message: at most
/// ``limit`` characters, control and format characters escaped, cut with `…`. A file named by
/// mistake (a master key, `/etc/passwd`) must not reach the terminal or the journal through an
/// error, so only scalars of a document that parsed as a mapping are ever quoted, and only
/// through here; a file that is not YAML, or whose top level is not a mapping, is described
/// without its content.
enum Excerpt {
    /// The most Unicode scalars of a value that a message shows.
    static let limit = 32

    /// `value` cut to ``limit`` scalars (then `…`), with `\n`, `\t`, `\r` and other control or
    /// format characters (ANSI escapes, bidi overrides) written as escapes.
    static func text(_ value: String) -> String {
        var result = ""
        var count = 0
        for scalar in value.unicodeScalars {
            guard count < limit else { return result + "…" }
            count += 1
            switch scalar {
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            default:
                switch scalar.properties.generalCategory {
                case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned:
                    result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
                default:
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }

    /// ``text(_:)`` between single quotes, as messages quote values: `'blob'`.
    static func quoted(_ value: String) -> String { "'" + text(value) + "'" }
}
