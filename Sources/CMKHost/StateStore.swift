import CMKCore
import CMKSyncer
import Foundation
import Glibc

/// The daemon's state for other processes: `status.json` (the last pass's report) and
/// `daemon.json` (pid and start time), both replaced atomically in the state directory;
/// `status.stale.json`, the last report moved aside when a newer one could not be written; and
/// `sync-request`, the counter `cmkctl sync` raises and each pass echoes.
public struct StateStore: Sendable {
    public let directory: String
    public var statusPath: String { directory + "/status.json" }
    public var daemonPath: String { directory + "/daemon.json" }
    /// Where `status.json` goes when the daemon cannot replace it: an old report is never shown as current.
    public var staleStatusPath: String { directory + "/status.stale.json" }
    public var syncRequestPath: String { directory + "/sync-request" }

    public init(directory: String) { self.directory = directory }

    /// What `daemon.json` holds while the daemon runs.
    public struct DaemonInfo: Codable, Hashable, Sendable {
        public var pid: Int32
        public var started: Date
        public var configuration: String
        public var version: String

        public init(pid: Int32, started: Date, configuration: String, version: String) {
            self.pid = pid
            self.started = started
            self.configuration = configuration
            self.version = version
        }
    }

    /// Replaces `status.json`. When that fails (a full disk, no descriptors left, a read-only or
    /// failing file system), the old report is moved aside to `status.stale.json` (a rename needs
    /// neither space nor a descriptor) so that no reader takes it for the current one, and the
    /// error is thrown; the next successful write removes the stale copy.
    public func writeReport(_ report: SyncReport) throws {
        do {
            try write(report, to: statusPath)
        } catch {
            // Where even a rename fails (read-only), readers still judge the report by its age.
            _ = Glibc.rename(statusPath, staleStatusPath)
            throw error
        }
        unlink(staleStatusPath)
    }

    public func readReport() throws -> SyncReport? { try read(SyncReport.self, from: statusPath) }
    /// The last report the daemon moved aside because it could not write a newer one.
    public func readStaleReport() throws -> SyncReport? { try read(SyncReport.self, from: staleStatusPath) }
    public func writeDaemonInfo(_ info: DaemonInfo) throws { try write(info, to: daemonPath) }
    public func readDaemonInfo() throws -> DaemonInfo? { try read(DaemonInfo.self, from: daemonPath) }
    public func removeDaemonInfo() { unlink(daemonPath) }

    /// The last `cmkctl sync` request recorded (0 when none ever was); read by the daemon at the
    /// start of each pass. A missing or unreadable counter reads as nil.
    public func readSyncRequest() -> UInt64? {
        guard let data = FileManager.default.contents(atPath: syncRequestPath) else { return nil }
        return UInt64(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Raises the `sync-request` counter by one under an exclusive lock and returns the new value:
    /// the pass that echoes a value at least this large started after the request.
    /// The file is created 0644 and owned like the state directory, so the daemon's user can read it.
    public func nextSyncRequest() throws(SystemFileError) -> UInt64 {
        guard let fd = try SystemFile.open(syncRequestPath, O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o644) else {
            throw SystemFileError("open", syncRequestPath, code: ENOENT)
        }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw SystemFileError("flock", syncRequestPath) }
        if geteuid() == 0, let owner = try? SystemFile.status(directory), owner.st_uid != 0 { _ = fchown(fd, owner.st_uid, owner.st_gid) }
        let text = String(decoding: try SystemFile.readToEnd(fd, syncRequestPath), as: UTF8.self)
        let next = (UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) &+ 1
        let bytes = Data("\(next)\n".utf8)
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        guard written == bytes.count, ftruncate(fd, off_t(bytes.count)) == 0 else { throw SystemFileError("write", syncRequestPath) }
        return next
    }

    /// A point on the system's boot clock (CLOCK_BOOTTIME), which clock steps and skewed wall
    /// clocks do not move, with the boot it belongs to: the age of a report across processes.
    public struct BootInstant: Hashable, Sendable {
        public var seconds: Double
        public var bootID: String

        public init(seconds: Double, bootID: String) {
            self.seconds = seconds
            self.bootID = bootID
        }

        public static func now() -> BootInstant? {
            var time = timespec()
            guard clock_gettime(CLOCK_BOOTTIME, &time) == 0,
                  let id = FileManager.default.contents(atPath: "/proc/sys/kernel/random/boot_id") else { return nil }
            return BootInstant(seconds: Double(time.tv_sec) + Double(time.tv_nsec) / 1e9,
                               bootID: String(decoding: id, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }

        /// Seconds from `earlier` to this instant, or nil when they belong to different boots.
        public func since(_ earlier: BootInstant) -> Double? { bootID == earlier.bootID ? seconds - earlier.seconds : nil }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = RFC3339.dateDecodingStrategy
        return decoder
    }()

    private func write(_ value: some Encodable, to path: String) throws {
        let data = try Self.encoder.encode(value)
        do throws(SystemFileError) { try SystemFile.atomicWrite(data, to: path, mode: 0o644) } catch { throw StorageError(error) }
    }

    private func read<T: Decodable>(_ type: T.Type, from path: String) throws -> T? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            return try Self.decoder.decode(type, from: data)
        } catch {
            throw StorageError(.corrupt, "\(path) is not a valid state file; it is rewritten after the next pass", underlying: error)
        }
    }
}
