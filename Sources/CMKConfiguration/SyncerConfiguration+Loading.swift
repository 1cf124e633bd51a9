import Foundation
import Yams

extension SyncerConfiguration {
    /// The largest configuration file accepted.
    static let maximumFileSize = 1 << 20
    /// The keys of the top level.
    static let topLevelKeys = ["state-directory", "runtime-directory", "vault", "accounts", "sync", "cache", "logging", "events", "metrics", "postgres"]

    /// Reads and validates the configuration file at `path` (relative paths resolve against the
    /// working directory). Has no side effects: nothing is created, and a failed reload leaves the
    /// running configuration to the caller. The file must be one only this process's user or root
    /// can change (``ConfigurationFile``).
    ///
    /// - Parameter environment: supplies `$STATE_DIRECTORY` and `$RUNTIME_DIRECTORY` defaults.
    /// - Throws: ``ConfigurationError`` naming the file, the key path and what is accepted.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) -> SyncerConfiguration {
        let text = try ConfigurationFile.text(at: path)
        return try parse(yaml: text, file: path, environment: environment)
    }

    /// Validates configuration text. `file` is the name used in errors and the base for relative
    /// `state-directory`/`runtime-directory` values (resolved against `workingDirectory` when
    /// itself relative).
    public static func parse(yaml: String, file: String, environment: [String: String],
                             workingDirectory: String = FileManager.default.currentDirectoryPath) throws(ConfigurationError) -> SyncerConfiguration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw syntaxError(error, file: file, yaml: yaml)
        } catch {
            throw ConfigurationError(.syntax, "is not valid YAML", file: file)
        }
        guard let root, !NodeReader.isNull(root) else {
            throw ConfigurationError(.empty, "the file is empty: it needs at least the keys vault and accounts (see config/cmk-syncer.example.yaml)", file: file)
        }
        let reader = NodeReader(file: file)
        guard case .mapping = root else {
            // Not even a mapping: perhaps a key or /etc/passwd named by mistake. Nothing of it is shown.
            let kind = switch root {
            case .sequence: "a list"
            default: "a single value"
            }
            throw ConfigurationError(.wrongType, "is not a YAML mapping (its top level is \(kind)): a configuration is a mapping with the keys \(topLevelKeys.joined(separator: ", "))",
                                     file: file, line: root.mark?.line, column: root.mark?.column)
        }
        let absoluteFile = PathSyntax.normalise(file.hasPrefix("/") ? file : workingDirectory + "/" + file)
        var decoder = ConfigurationDecoder(reader: reader, file: absoluteFile, environment: environment, workingDirectory: workingDirectory)
        return try decoder.decode(root)
    }

    /// A Yams error as a ``ConfigurationError`` with line and column. Yams' own descriptions quote
    /// the offending line, and the text may be a secret named by mistake, so only the position and
    /// libyaml's fixed wording of the problem and its context (C string literals such as "while
    /// scanning a simple key") are kept; a duplicate key is not named.
    static func syntaxError(_ error: YamlError, file: String, yaml: String) -> ConfigurationError {
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let detail = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
            let text = problem.hasPrefix("but ") ? String(problem.dropFirst(4)) : problem
            return ConfigurationError(.syntax, "invalid YAML: \(text)\(detail)", file: file, line: mark.line, column: mark.column)
        case .reader(let problem, let offset, _, _):
            let (line, column) = offset.map { position(ofUTF8Offset: $0, in: yaml) } ?? (nil, nil)
            return ConfigurationError(.syntax, "invalid YAML: \(problem)", file: file, line: line, column: column)
        case .duplicatedKeysInMapping(_, let context):
            return ConfigurationError(.syntax, "a key appears twice in one mapping: each key may appear once", file: file,
                                      line: context.mark.line, column: context.mark.column)
        default:
            return ConfigurationError(.syntax, "is not valid YAML", file: file)
        }
    }

    private static func position(ofUTF8Offset offset: Int, in text: String) -> (Int?, Int?) {
        var line = 1, column = 1
        for byte in text.utf8.prefix(offset) {
            if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }
}
