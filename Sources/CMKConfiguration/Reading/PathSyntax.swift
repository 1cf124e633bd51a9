/// Paths in the configuration: non-empty, no NUL, no `~`, absolute once resolved; normalised
/// lexically (`.` and empty segments dropped, `..` applied, no trailing slash).
enum PathSyntax {
    /// Resolves `raw` against the absolute directory `base`, or returns why it is refused.
    static func resolve(_ raw: String, against base: String) -> Result<String, Refusal> {
        if raw.isEmpty { return .failure(Refusal("is empty (expected a path)")) }
        if raw.utf8.contains(0) { return .failure(Refusal("contains a NUL character (expected a path)")) }
        if raw.hasPrefix("~") {
            return .failure(Refusal("\(Excerpt.quoted(raw)) starts with '~': home directories are not expanded; write the path out"))
        }
        let joined = raw.hasPrefix("/") ? raw : base + "/" + raw
        guard joined.hasPrefix("/") else {
            return .failure(Refusal("\(Excerpt.quoted(raw)) is not absolute once resolved against \(Excerpt.quoted(base))"))
        }
        return .success(normalise(joined))
    }

    /// Lexical normalisation of an absolute path.
    static func normalise(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The directory holding `path` (absolute).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// Whether `path` is `ancestor` or lies inside it (both normalised and absolute).
    static func isInside(_ path: String, _ ancestor: String) -> Bool {
        path == ancestor || ancestor == "/" || path.hasPrefix(ancestor + "/")
    }

    struct Refusal: Error { let reason: String; init(_ reason: String) { self.reason = reason } }
}
