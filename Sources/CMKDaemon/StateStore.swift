import CMKCore
import CMKSyncer
import Foundation

/// The daemon's state for other processes: `status.json` (the last pass's report) and
/// `daemon.json` (pid and start time), both replaced atomically in the state directory.
public struct StateStore: Sendable {
    public let directory: String
    public var statusPath: String { directory + "/status.json" }
    public var daemonPath: String { directory + "/daemon.json" }

    public init(directory: String) { self.directory = directory }

    /// What `daemon.json` holds while the daemon runs.
    public struct DaemonInfo: Codable, Hashable, Sendable {
        public var pid: Int32
        public var started: Date
        public var configuration: String
        public var version: String
    }

    public func writeReport(_ report: SyncReport) throws { try write(report, to: statusPath) }
    public func readReport() throws -> SyncReport? { try read(SyncReport.self, from: statusPath) }
    public func writeDaemonInfo(_ info: DaemonInfo) throws { try write(info, to: daemonPath) }
    public func readDaemonInfo() throws -> DaemonInfo? { try read(DaemonInfo.self, from: daemonPath) }
    public func removeDaemonInfo() { unlink(daemonPath) }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
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
