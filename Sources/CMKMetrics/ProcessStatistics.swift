import Foundation

/// The process metrics every Prometheus client library exports, read from `/proc/self`
/// (the names and meanings of client_golang's process collector). Nil where Linux's /proc is absent.
struct ProcessStatistics: Sendable {
    struct Sample {
        var cpuSeconds: Double?
        var residentBytes: Double?
        var virtualBytes: Double?
        var openFDs: Double?
        var maxFDs: Double?
    }

    private let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    private let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))

    /// `/proc/self/stat`'s fields after the command name (field 3 onwards), or nil.
    private func statFields() -> [Substring]? {
        guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// Unix time the process started: field 22 (ticks after boot) against CLOCK_BOOTTIME now, so
    /// that /proc/stat (hidden by the unit's `ProcSubset=pid`) is not needed.
    var startTime: Double? {
        guard let fields = statFields(), fields.count > 19, let started = Double(fields[19]) else { return nil }
        var now = timespec()
        guard clock_gettime(CLOCK_BOOTTIME, &now) == 0 else { return nil }
        let sinceBoot = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        return Date().timeIntervalSince1970 - (sinceBoot - started / ticks)
    }

    func sample() -> Sample {
        var sample = Sample()
        // Fields 14 utime, 15 stime (ticks), 23 vsize (bytes), 24 rss (pages): index = field - 3.
        if let fields = statFields(), fields.count > 21 {
            if let user = Double(fields[11]), let system = Double(fields[12]) { sample.cpuSeconds = (user + system) / ticks }
            sample.virtualBytes = Double(fields[20])
            sample.residentBytes = Double(fields[21]).map { $0 * pageSize }
        }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            sample.openFDs = Double(entries.count)
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { sample.maxFDs = Double(limit.rlim_cur) }
        return sample
    }
}
