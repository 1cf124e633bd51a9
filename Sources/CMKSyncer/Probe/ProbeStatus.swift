import CMKCore
import Foundation

/// What the key-state probe has done since the daemon started (issue 22): written by the daemon to
/// `probe.json` in the state directory after every probe, read by `cmkctl status`.
public struct ProbeStatus: Hashable, Sendable, Codable {
    /// The daemon that probes.
    public var pid: Int32
    /// `sync.probe-interval` in seconds.
    public var intervalSeconds: Double
    /// Probes that got a snapshot.
    public var good: Int = 0
    /// Probes that got none (outage, 429, 401/403, a malformed answer): never acted on.
    public var faults: Int = 0
    /// Faults by the vault error's code (`vault.throttled`, `vault.unavailable`, …).
    public var faultsByCode: [String: Int] = [:]
    /// Faults since the last good probe.
    public var consecutiveFaults: Int = 0
    /// Turns skipped because a pass ran or was asked for, or the vault throttle was pausing.
    public var skipped: Int = 0
    /// Passes the probe started.
    public var passesStarted: Int = 0
    public var lastGood: Date?
    public var lastFault: Date?
    public var lastFaultCode: String?
    /// When the probe last started a pass, and the changes it saw (codes, e.g. `key-deleted`).
    public var lastChange: Date?
    public var lastChanges: [String]?

    public init(pid: Int32, intervalSeconds: Double) {
        self.pid = pid
        self.intervalSeconds = intervalSeconds
    }

    /// Counts one probe's verdict at `now`.
    public mutating func record(_ verdict: ProbeVerdict, at now: Date) {
        switch verdict {
        case .unchanged, .changed:
            good += 1
            consecutiveFaults = 0
            lastGood = now
            if case .changed(let changes) = verdict {
                passesStarted += 1
                lastChange = now
                lastChanges = changes.map(\.description)
            }
        case .fault(let fault):
            faults += 1
            consecutiveFaults += 1
            faultsByCode[fault.code, default: 0] += 1
            lastFault = now
            lastFaultCode = fault.code
        }
    }

    /// The file in a state directory.
    public static func path(stateDirectory: String) -> String { stateDirectory + "/probe.json" }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    public func write(stateDirectory: String) throws {
        let data = try Self.encoder.encode(self)
        try SystemFile.atomicWrite(data, to: Self.path(stateDirectory: stateDirectory), mode: 0o644)
    }

    /// The daemon's last status, nil when there is none or it does not parse (a probe rewrites it).
    public static func read(stateDirectory: String) -> ProbeStatus? {
        guard let data = FileManager.default.contents(atPath: path(stateDirectory: stateDirectory)) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = RFC3339.dateDecodingStrategy
        return try? decoder.decode(ProbeStatus.self, from: data)
    }

    /// A short phrase for the daemon's status line while probes fail; nil while they work.
    public var failingPhrase: String? {
        guard consecutiveFaults > 0, let lastFaultCode else { return nil }
        let since = lastGood.map { ", last good \(String($0.ISO8601Format().dropFirst(11)))" } ?? ""
        return "probe failing (\(consecutiveFaults)x \(lastFaultCode)\(since))"
    }
}
