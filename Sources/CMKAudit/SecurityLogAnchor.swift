import CMKCore
import Foundation
import Glibc

/// The record that a security log exists: `<log>.anchor` (`security.log.anchor`), written once,
/// right after the log's first record reached the disk, and never changed afterwards.
///
/// It holds when the log was started and the hash of its first record. Without it an absent or
/// emptied log would look like a log that was never written; with it, a log that vanished, was
/// truncated to nothing or was replaced by a fresh chain is an error (``AuditError/Code/missing``
/// or a broken first record) for ``SecurityLog/append(_:)``, ``SecurityLog/requireAppendable()``
/// and ``SecurityLog/verify()``. Like the log, the anchor may be read by group and others but
/// written only by its owner.
struct SecurityLogAnchor: Codable, Hashable, Sendable {
    /// When the anchor was written (the log's first record is a moment older).
    var created: Date
    /// The `hash` of the log's first record.
    var firstHash: String

    /// The anchor's path for a log at `logPath`.
    static func path(for logPath: String) -> String { logPath + ".anchor" }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        // CMKCore's reader: this module's own RFC3339 writes and reads only the records' form.
        decoder.dateDecodingStrategy = CMKCore.RFC3339.dateDecodingStrategy
        return decoder
    }()

    /// The anchor of the log at `logPath`, or nil if there is none. Throws `.permissions` for an
    /// anchor that is not a regular file or that group or others may write, `.corrupt` for one
    /// that does not parse.
    static func read(for logPath: String) throws(AuditError) -> SecurityLogAnchor? {
        let path = path(for: logPath)
        guard let fd = try LogFile.mapped({ () throws(SystemFileError) in try SystemFile.open(path, O_RDONLY | O_NOFOLLOW, missingOK: true) }) else {
            return nil
        }
        defer { close(fd) }
        let info = try LogFile.mapped { () throws(SystemFileError) in try SystemFile.status(of: fd, path) }
        if let problem = FileAccessRule.appendOnlyLog.problem(with: info, path: path, what: "security-log anchor") {
            throw AuditError(.permissions, problem.description)
        }
        let data = try LogFile.mapped { () throws(SystemFileError) in try SystemFile.read(fd, upTo: 4096, path) }
        do {
            return try decoder.decode(SecurityLogAnchor.self, from: data)
        } catch {
            throw AuditError(.corrupt, "security-log anchor '\(path)' is not valid; it records when '\(logPath)' was started and must not be edited (restore it from a backup)")
        }
    }

    /// Writes the anchor unless one exists (a racing writer's is kept). When root creates it
    /// (`sudo cmkctl …`), it is handed to the owner of the directory, as the log is.
    static func create(for logPath: String, firstHash: String, now: Date) throws(AuditError) {
        let path = path(for: logPath)
        let data: Data
        do { data = try encoder.encode(SecurityLogAnchor(created: now, firstHash: firstHash)) } catch {
            throw AuditError(.io, "encoding the security-log anchor failed", underlying: error)
        }
        guard try LogFile.mapped({ () throws(SystemFileError) in try SystemFile.createExclusively(data, at: path, mode: 0o644) }) else { return }
        guard geteuid() == 0, let directory = try? SystemFile.status(SystemFile.directory(of: path)), directory.st_uid != 0 else { return }
        if chown(path, directory.st_uid, directory.st_gid) != 0 {
            throw LogFile.error("chown", path)
        }
    }
}
