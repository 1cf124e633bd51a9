import CMKCore
import Foundation
import Glibc

/// A log's checkpoint-signing key on disk: one file holding the ``NoteSigner/signerKey`` text and
/// a newline, made once (a complete temporary file linked into place with `link(2)`, so no reader
/// ever sees half a key and two racing creators end up with the same key) and never changed. The
/// vault service's `log-signing.key` and the host daemon's `security.log.key` are both this file;
/// each module turns a ``Failure`` into its own error type.
public enum SignerKeyFile {
    /// Why the key file cannot be used. `detail` names the file and the fix, never the key.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public enum Kind: Sendable, Hashable {
            /// Not a regular file, wrong owner, or reachable by group or others.
            case permissions
            /// A system call failed.
            case io
            /// The file does not hold a signer key.
            case corrupt
            /// The file holds a key with another name than the one asked for.
            case nameMismatch(existing: String)
        }

        public let kind: Kind
        public let detail: String

        public var description: String { detail }
    }

    /// Reads the key at `path`; nil when there is none. `rule` is who may own and reach the file
    /// (``FileAccessRule/privateFile`` for a key only its own service reads); `what` names it in
    /// messages ("log signing key").
    public static func load(path: String, rule: FileAccessRule, what: String) throws(Failure) -> NoteSigner? {
        let opened: Int32?
        do throws(SystemFileError) {
            opened = try SystemFile.open(path, O_RDONLY | O_NOFOLLOW, missingOK: true)
        } catch {
            throw Failure(kind: error.isPermission ? .permissions : .io, detail: "cannot open the \(what) '\(path)': \(error.message)")
        }
        guard let fd = opened else { return nil }
        defer { close(fd) }
        let info: stat
        do throws(SystemFileError) { info = try SystemFile.status(of: fd, path) } catch {
            throw Failure(kind: .io, detail: "cannot stat the \(what) '\(path)': \(error.message)")
        }
        if let problem = rule.problem(with: info, path: path, what: what) {
            throw Failure(kind: .permissions, detail: problem.description)
        }
        let data: Data
        do throws(SystemFileError) { data = try SystemFile.read(fd, upTo: 4096, path) } catch {
            throw Failure(kind: .io, detail: "cannot read the \(what) '\(path)': \(error.message)")
        }
        guard data.count < 4096, let text = String(data: data, encoding: .utf8) else {
            throw Failure(kind: .corrupt, detail: "the \(what) '\(path)' is larger than 4 KiB or not UTF-8; restore it from the backup of the state directory")
        }
        do {
            return try NoteSigner(signerKey: text.trimmingCharacters(in: .newlines))
        } catch {
            throw Failure(kind: .corrupt, detail: "the \(what) '\(path)' is not a PRIVATE+KEY+<name>+<id>+<key> signer key; restore it from the backup of the state directory")
        }
    }

    /// Reads the key at `path`, or makes one named `name` (mode 0600) when there is none.
    /// `created` is true when this call made it. An existing key must carry `name` when one is
    /// given (customers pinned it); with `name` nil any existing key is returned and a new one is
    /// named `defaultName`.
    public static func loadOrCreate(path: String, name: String?, defaultName: String? = nil, rule: FileAccessRule,
                                    what: String) throws(Failure) -> (signer: NoteSigner, created: Bool) {
        if let signer = try load(path: path, rule: rule, what: what) {
            if let name, signer.name != name { throw Failure(kind: .nameMismatch(existing: signer.name), detail: "the \(what) '\(path)' is named '\(signer.name)', not '\(name)'") }
            return (signer, false)
        }
        let newName = name ?? defaultName ?? ""
        let signer: NoteSigner
        do {
            signer = try NoteSigner.generate(name: newName)
        } catch {
            throw Failure(kind: .io, detail: "cannot make a \(what) named '\(newName)': \(error)")
        }
        let created: Bool
        do throws(SystemFileError) {
            created = try SystemFile.createExclusively(Data((signer.signerKey + "\n").utf8), at: path, mode: 0o600)
        } catch {
            throw Failure(kind: error.isPermission ? .permissions : .io, detail: "cannot write the \(what) '\(path)': \(error.message)")
        }
        // Made meanwhile by another process: use that one.
        return created ? (signer, true) : try loadOrCreate(path: path, name: name, defaultName: defaultName, rule: rule, what: what)
    }
}
