import Yams

/// Reads typed values out of a YAML node tree, turning every mismatch into a
/// ``ConfigurationError`` that names the key path, the value and what is accepted.
///
/// Scalars are interpreted strictly and without YAML 1.1 guesswork: a boolean is a plain `true` or
/// `false`, an integer is plain decimal digits, and a quoted scalar is always a string.
struct NodeReader {
    let file: String

    func error(_ code: ConfigurationError.Code, _ path: String, _ reason: String, at node: Node?) -> ConfigurationError {
        ConfigurationError(code, reason, keyPath: path, file: file, line: node?.mark?.line, column: node?.mark?.column)
    }

    // MARK: Node shapes

    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    static func isPlain(_ scalar: Node.Scalar) -> Bool { scalar.style == .plain || scalar.style == .any }

    /// How a node is named in "got …" phrases: a scalar by an ``Excerpt`` of its value.
    static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            if isNull(node) { return "no value" }
            return isPlain(scalar) ? Excerpt.quoted(scalar.string) : "the quoted string \(Excerpt.quoted(scalar.string))"
        }
    }

    // MARK: Containers

    /// The mapping at `path`, refusing keys outside `keys`. `secretHint` completes the message for
    /// keys that look like inline secrets.
    func mapping(_ node: Node, at path: String, keys: [String],
                 secretHint: String = Self.defaultSecretHint) throws(ConfigurationError) -> Section {
        guard case .mapping(let mapping) = node else {
            throw error(.wrongType, path, "expected a mapping with the keys \(keys.joined(separator: ", ")), got \(Self.describe(node))", at: node)
        }
        var entries: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            let keyPath = Section.join(path, Excerpt.text(key.scalar?.string ?? "?"))
            guard case .scalar(let scalar) = key, !Self.isNull(key) else {
                throw error(.wrongType, path.isEmpty ? "(top level)" : path, "keys must be plain names, got \(Self.describe(key)) as a key", at: key)
            }
            let name = scalar.string
            guard keys.contains(name) else {
                if let suggestion = Suggestion.closest(to: name, in: keys) {
                    throw error(.unknownKey, keyPath, "unknown key, did you mean '\(suggestion)'? (accepted: \(keys.joined(separator: ", ")))", at: key)
                }
                if Self.looksLikeSecret(name) {
                    throw error(.inlineSecret, keyPath, "secrets are never read from the configuration file: \(secretHint)", at: key)
                }
                throw error(.unknownKey, keyPath, "unknown key (accepted: \(keys.joined(separator: ", ")))", at: key)
            }
            entries[name] = (key, value)
        }
        return Section(path: path, node: node, entries: entries)
    }

    /// Like ``mapping(_:at:keys:secretHint:)`` for an optional section: absent or empty (every key
    /// commented out) means all defaults.
    func optionalMapping(_ node: Node?, at path: String, keys: [String]) throws(ConfigurationError) -> Section {
        guard let node, !Self.isNull(node) else { return Section(path: path, node: nil, entries: [:]) }
        return try mapping(node, at: path, keys: keys)
    }

    func sequence(_ node: Node, at path: String, expected: String) throws(ConfigurationError) -> [Node] {
        guard case .sequence(let sequence) = node else {
            throw error(.wrongType, path, "expected a list of \(expected), got \(Self.describe(node))", at: node)
        }
        return Array(sequence)
    }

    // MARK: Scalars

    func string(_ node: Node, at path: String, expected: String) throws(ConfigurationError) -> String {
        guard case .scalar(let scalar) = node, !Self.isNull(node) else {
            throw error(.wrongType, path, "expected \(expected), got \(Self.describe(node))", at: node)
        }
        return scalar.string
    }

    func bool(_ node: Node, at path: String) throws(ConfigurationError) -> Bool {
        if case .scalar(let scalar) = node, Self.isPlain(scalar) {
            switch scalar.string {
            case "true": return true
            case "false": return false
            default: break
            }
        }
        throw error(.wrongType, path, "expected true or false, got \(Self.describe(node))", at: node)
    }

    func int(_ node: Node, at path: String, range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let accepted = "accepted: \(range.lowerBound) to \(range.upperBound)"
        guard case .scalar(let scalar) = node, Self.isPlain(scalar), !Self.isNull(node),
              scalar.string.allSatisfy({ $0 >= "0" && $0 <= "9" || $0 == "-" }),
              let value = Int(scalar.string)
        else {
            throw error(.wrongType, path, "expected a whole number (\(accepted)), got \(Self.describe(node))", at: node)
        }
        guard range.contains(value) else {
            throw error(.invalidValue, path, "\(value) is out of range (\(accepted))", at: node)
        }
        return value
    }

    /// A duration within `range`; `accepted` spells the range for the message (`1m to 24h`).
    func duration(_ node: Node, at path: String, range: ClosedRange<Duration>, accepted: String) throws(ConfigurationError) -> Duration {
        let text = try string(node, at: path, expected: "a duration (\(DurationSyntax.hint))")
        guard let value = DurationSyntax.parse(text) else {
            throw error(.invalidValue, path, "\(Excerpt.quoted(text)) is not a duration (\(DurationSyntax.hint))", at: node)
        }
        guard range.contains(value) else {
            throw error(.invalidValue, path, "\(Excerpt.quoted(text)) is out of range (accepted: \(accepted))", at: node)
        }
        return value
    }

    /// One of `accepted`, named `noun` in the message ("'blob' is not a storage kind (accepted: …)").
    func choice(_ node: Node, at path: String, noun: String, accepted: [String]) throws(ConfigurationError) -> String {
        let list = accepted.joined(separator: ", ")
        let text = try string(node, at: path, expected: "\(noun) (accepted: \(list))")
        guard accepted.contains(text) else {
            let hint = Suggestion.closest(to: text, in: accepted).map { ", did you mean '\($0)'?" } ?? ""
            throw error(.invalidValue, path, "\(Excerpt.quoted(text)) is not \(noun)\(hint) (accepted: \(list))", at: node)
        }
        return text
    }

    /// A path, resolved against the absolute directory `base` when relative.
    func path(_ node: Node, at path: String, base: String) throws(ConfigurationError) -> String {
        let raw = try string(node, at: path, expected: "a path")
        switch PathSyntax.resolve(raw, against: base) {
        case .success(let resolved): return resolved
        case .failure(let refusal): throw error(.invalidValue, path, refusal.reason, at: node)
        }
    }

    // MARK: Secrets

    static let defaultSecretHint = "put the secret in a file or a systemd credential (LoadCredential=) and name that instead"

    private static let secretWords: Set<String> = [
        "secret", "password", "passwd", "passphrase", "token", "pin", "credential", "credentials",
        "apikey", "psk", "bearer",
    ]
    private static let secretKeys: Set<String> = ["master-key", "private-key", "api-key", "key-material", "connection-string"]

    /// Whether a key name looks like it would carry a secret inline (`client-secret`, `master-key`, `pin`).
    static func looksLikeSecret(_ key: String) -> Bool {
        let lower = key.lowercased()
        if secretKeys.contains(lower.replacingOccurrences(of: "_", with: "-")) { return true }
        return lower.split(whereSeparator: { $0 == "-" || $0 == "_" || $0 == "." }).contains { secretWords.contains(String($0)) }
    }
}

/// A checked mapping: its keys are all known.
struct Section {
    let path: String
    let node: Node?
    let entries: [String: (key: Node, value: Node)]

    subscript(key: String) -> Node? { entries[key]?.value }

    func child(_ key: String) -> String { Self.join(path, key) }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }
}
