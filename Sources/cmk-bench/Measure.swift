import Foundation
import Glibc

/// Clocks, distributions and process metrics read from `/proc`.
enum Measure {
    /// Monotonic wall time in seconds.
    static func wall() -> Double { clock(CLOCK_MONOTONIC) }

    /// CPU time (user + system) of the whole process in seconds: the benchmark loops are single
    /// threaded, and CPU time stays honest while other work shares the machine.
    static func processCPU() -> Double { clock(CLOCK_PROCESS_CPUTIME_ID) }

    private static func clock(_ id: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(id, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// A field of `/proc/<pid>/status` in bytes (`VmHWM`, `VmRSS`), or nil.
    static func statusBytes(_ field: String, pid: String = "self") -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count >= 2, let kib = Int(parts[1]) else { return nil }
            return kib * 1024
        }
        return nil
    }

    /// Resets this process's peak RSS (`VmHWM`) to its current RSS (`/proc/self/clear_refs`, "5").
    static func resetPeakRSS() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }

    /// utime + stime of a process in seconds, from `/proc/<pid>/stat`.
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after "comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        return (utime + stime) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// Percentiles of a sample (nearest rank).
struct Distribution: Codable, Sendable {
    var count: Int
    var p50: Double
    var p90: Double
    var p99: Double
    var min: Double
    var max: Double

    init(_ samples: [Double]) {
        let sorted = samples.sorted()
        func rank(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            return sorted[Swift.min(sorted.count - 1, Swift.max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
        }
        count = sorted.count
        p50 = rank(0.5)
        p90 = rank(0.9)
        p99 = rank(0.99)
        min = sorted.first ?? .nan
        max = sorted.last ?? .nan
    }
}

/// A rate measured as the median of several timed repetitions after a warm-up.
struct Rate: Codable, Sendable {
    /// Operations (or bytes) per CPU second, median over repetitions.
    var perCPUSecond: Double
    /// Operations (or bytes) per wall second, median over repetitions.
    var perWallSecond: Double
    var repetitions: Int
    var operations: Int

    /// Runs `body` (one operation of `units` units) for `warmup` seconds, then `repetitions`
    /// times for at least `seconds / repetitions` each.
    static func measure(units: Double, seconds: Double, repetitions: Int = 5, warmup: Double = 0.2,
                        _ body: () async throws -> Void) async rethrows -> Rate {
        let warmEnd = Measure.wall() + warmup
        repeat { try await body() } while Measure.wall() < warmEnd
        var cpuRates: [Double] = []
        var wallRates: [Double] = []
        var total = 0
        for _ in 0..<repetitions {
            let cpu0 = Measure.processCPU(), wall0 = Measure.wall()
            var n = 0
            repeat {
                try await body()
                n += 1
            } while Measure.wall() - wall0 < seconds / Double(repetitions)
            cpuRates.append(units * Double(n) / Swift.max(Measure.processCPU() - cpu0, 1e-9))
            wallRates.append(units * Double(n) / Swift.max(Measure.wall() - wall0, 1e-9))
            total += n
        }
        return Rate(perCPUSecond: Distribution(cpuRates).p50, perWallSecond: Distribution(wallRates).p50,
                    repetitions: repetitions, operations: total)
    }
}
