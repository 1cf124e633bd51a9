import CMKCore
import CMKIdentity
import Foundation
import Glibc
import Logging
import Synchronization

/// The hosts' latest usage reports as files: `<state-directory>/usage/<host>.json`, one per host,
/// replaced atomically (temp file, fsync, rename, fsync of the directory) at mode 0600 in a 0700
/// directory (docs/vault-service.md, "Version usage from the hosts").
///
/// Reading never fails a request over one bad file: a file that is not a report of its host
/// (corrupt JSON, a host that does not match its name, too large, not a regular file, not the
/// service's own or open to others) is skipped with a journal warning (once per file version).
public final class HostUsageFiles: HostUsageBook {
    /// `<state-directory>/usage`.
    public let directory: String
    let logger: Logger
    /// Files already warned about, by name and modification time: a bad file is reported once,
    /// not on every read.
    private let warned = Mutex<Set<String>>([])

    /// The largest report file read (a report of 1,000 versions is about 60 KiB).
    static let maximumFileBytes = 256 * 1024

    public init(stateDirectory: String, logger: Logger) {
        directory = stateDirectory + "/usage"
        self.logger = logger
    }

    /// Why a report could not be kept: `detail` names the file and the fix, never a value of the report.
    public struct StoreError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The file of `host` (a normalized DNS host name, so a plain file name).
    func path(of host: String) throws -> String {
        let name: String
        do { name = try Names.normalizedHost(host) } catch {
            throw StoreError(description: "the host name of a usage report is not a DNS host name; nothing was stored")
        }
        return directory + "/" + name + ".json"
    }

    public func store(_ report: HostUsageReport) throws {
        let path = try path(of: report.host)
        do {
            try SystemFile.makeDirectories(directory, mode: 0o700)
            guard let info = try SystemFile.status(directory, followLinks: false), info.st_mode & S_IFMT == S_IFDIR,
                  info.st_mode & 0o077 == 0 else {
                throw StoreError(description: "\(directory) is not a directory private to the service (mode 0700): chmod 700 it, or remove it so the service makes it again")
            }
            try SystemFile.atomicWrite(try Self.encoder.encode(report), to: path, mode: 0o600)
        } catch let error as SystemFileError {
            throw StoreError(description: "the usage report of a host cannot be written: \(error.description); free space on, or repair, the state directory's file system")
        }
    }

    public func reports() throws -> [HostUsageReport] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch CocoaError.fileReadNoSuchFile {
            return []
        } catch {
            if try SystemFile.status(directory) == nil { return [] }
            throw StoreError(description: "\(directory) cannot be listed (\(type(of: error))): check its owner and mode 0700")
        }
        // `.name.json.XXXX.tmp` are an interrupted replacement's temp files: not reports.
        return names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted().compactMap { read($0) }
    }

    /// One report file, or nil (with a warning) when it is not a report of the host it names.
    func read(_ name: String) -> HostUsageReport? {
        let path = directory + "/" + name
        let fd: Int32
        do {
            guard let opened = try SystemFile.open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, missingOK: true) else { return nil }  // replaced meanwhile
            fd = opened
        } catch {
            skip(name, modified: 0, reason: error.isPermission ? "not readable, or a symbolic link" : "cannot be opened")
            return nil
        }
        defer { close(fd) }
        do {
            let info = try SystemFile.status(of: fd, path)
            let modified = Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec)
            guard info.st_mode & S_IFMT == S_IFREG else { skip(name, modified: modified, reason: "not a regular file"); return nil }
            guard info.st_uid == geteuid(), info.st_mode & 0o077 == 0 else {
                skip(name, modified: modified, reason: "not the service's own file (owner or mode 0600)"); return nil
            }
            guard info.st_size <= Self.maximumFileBytes else { skip(name, modified: modified, reason: "larger than 256 KiB"); return nil }
            let data = try SystemFile.readToEnd(fd, path)
            guard let report = try? Self.decoder.decode(HostUsageReport.self, from: data) else {
                skip(name, modified: modified, reason: "not a usage report (corrupt or foreign JSON)"); return nil
            }
            guard report.host + ".json" == name else { skip(name, modified: modified, reason: "the report inside is another host's"); return nil }
            return report
        } catch {
            skip(name, modified: 0, reason: "cannot be read")
            return nil
        }
    }

    private func skip(_ name: String, modified: Int, reason: String) {
        guard warned.withLock({ $0.insert(name + "@" + String(modified)).inserted }) else { return }
        logger.warning("A host usage report file was skipped; the host counts as not reporting until it reports again.", metadata: [
            "message_id": .string(VaultMessageID.usageReportSkipped), "cmk_file": .string(directory + "/" + name), "cmk_reason": .string(reason),
        ])
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .secondsSince1970
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }()
}
