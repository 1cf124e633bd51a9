import Foundation
import Yams
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SyncerConfiguration {
    /// The largest configuration file accepted.
    static let maximumFileSize = 1 << 20
    /// The keys of the top level.
    static let topLevelKeys = ["state-directory", "runtime-directory", "vault", "accounts", "sync", "cache", "logging"]

    /// Reads and validates the configuration file at `path` (relative paths resolve against the
    /// working directory). Has no side effects: nothing is created, and a failed reload leaves the
    /// running configuration to the caller.
    ///
    /// - Parameter environment: supplies `$STATE_DIRECTORY` and `$RUNTIME_DIRECTORY` defaults.
    /// - Throws: ``ConfigurationError`` naming the file, the key path and what is accepted.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) -> SyncerConfiguration {
        let text = try read(path)
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
            throw ConfigurationError(.syntax, "invalid YAML: \(error)", file: file)
        }
        guard let root, !NodeReader.isNull(root) else {
            throw ConfigurationError(.empty, "the file is empty: it needs at least the keys vault and accounts (see config/cmk-syncer.example.yaml)", file: file)
        }
        let reader = NodeReader(file: file)
        guard case .mapping = root else {
            throw ConfigurationError(.wrongType, "the top level must be a mapping with the keys \(topLevelKeys.joined(separator: ", ")), got \(NodeReader.describe(root))",
                                     file: file, line: root.mark?.line, column: root.mark?.column)
        }
        let absoluteFile = PathSyntax.normalise(file.hasPrefix("/") ? file : workingDirectory + "/" + file)
        var decoder = ConfigurationDecoder(reader: reader, file: absoluteFile, environment: environment, workingDirectory: workingDirectory)
        return try decoder.decode(root)
    }

    /// The file's text, or an error that says what to do.
    static func read(_ path: String) throws(ConfigurationError) -> String {
        guard !path.isEmpty else {
            throw ConfigurationError(.fileMissing, "the configuration path is empty: pass --config <file>", file: path)
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigurationError(.fileMissing, "the configuration file does not exist: create it (config/cmk-syncer.example.yaml is a commented example) or pass --config <file>", file: path)
        }
        guard !isDirectory.boolValue else {
            throw ConfigurationError(.unreadable, "is a directory, not a configuration file: pass --config <file>", file: path)
        }
        guard access(path, R_OK) == 0 else {
            let reason = String(cString: strerror(errno))
            throw ConfigurationError(.unreadable, "cannot read the configuration file: \(reason)", file: path)
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigurationError(.unreadable, "cannot read the configuration file: \(error.localizedDescription)", file: path)
        }
        guard data.count <= maximumFileSize else {
            throw ConfigurationError(.unreadable, "the configuration file has \(data.count) bytes; at most 1 MiB is accepted", file: path)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(.unreadable, "the configuration file is not UTF-8 text", file: path)
        }
        return text
    }

    /// A Yams error as a ``ConfigurationError`` with line and column.
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
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return ConfigurationError(.syntax, "duplicate key \(keys) in one mapping: each key may appear once", file: file,
                                      line: context.mark.line, column: context.mark.column)
        default:
            return ConfigurationError(.syntax, "invalid YAML: \(error)", file: file)
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
