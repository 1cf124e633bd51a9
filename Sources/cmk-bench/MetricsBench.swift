import CMKTesting
import Foundation
import Glibc

/// Suite 10: what the daemon's metrics cost (issue 19). Two real `cmk-syncer run` daemons on the
/// daemon suite's world (``DaemonBench/writeConfig(root:accounts:)``: 10,000 directory accounts on
/// the local vault), one with `metrics.listen` on a loopback port and one without, in the same run:
/// - pass time: `SIGUSR1` → `status.json` rewritten (its mtime, polled every 2 ms), the daemons in
///   turn, alternating which goes first, `metricsRounds` passes each; median and spread;
/// - idle: both side by side for `daemonIdleWindow` seconds, the one with metrics scraped every 5 s
///   (as a Prometheus would, faster), then `VmRSS` and `utime+stime` of each;
/// - a scrape: its wall time over loopback (connect to last byte) and its size.
enum MetricsBench {
    static let accounts = 10_000

    /// A daemon of the bench and its status file.
    struct Daemon {
        let root: String
        let config: String
        var status: String { root + "/state/status.json" }
    }

    static func run(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        let port = try LoopbackPort.free()
        var daemons: [Daemon] = []
        for (name, metrics) in [("off", nil), ("on", "metrics: {listen: '127.0.0.1:\(port)'}")] as [(String, String?)] {
            let root = "\(scratch)/metrics-\(name)"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let config = try DaemonBench.writeConfig(root: root, accounts: accounts)
            if let metrics { try (try String(contentsOfFile: config, encoding: .utf8) + metrics + "\n").write(toFile: config, atomically: true, encoding: .utf8) }
            // The first start creates the vault, the key and the accounts; the measured daemons find them bound.
            let first = try DaemonBench.start(config: config, root: root, log: root + "/first.log")
            _ = try first.waitReady(timeout: plan.daemonReadyTimeout)
            try first.stop()
            daemons.append(Daemon(root: root, config: config))
        }
        // The measured daemons have no NOTIFY_SOCKET: nobody reads it after READY, and a unix datagram
        // queue holds 10 messages (net.unix.max_dgram_qlen), so after about 10 passes' STATUS= lines a
        // notifying daemon would stall. They are ready when their first pass rewrote status.json.
        let running = try daemons.map { try QuietDaemon(daemon: $0, timeout: plan.daemonReadyTimeout) }
        defer { for process in running { process.stop() } }
        let load = Machine.load()

        // Pass times, the daemons in turn (never two passes at once).
        var passes: [[Double]] = [[], []]
        var histogram: (sum: Double, count: Double)?
        let before = try scrape(port: port)
        var resends = 0
        for round in 0..<plan.metricsRounds {
            for index in round % 2 == 0 ? [0, 1] : [1, 0] {
                let (seconds, resent) = try pass(running[index], status: daemons[index].status)
                passes[index].append(seconds)
                if resent { resends += 1 }
            }
        }
        if resends > 0 { results.notes.append("metrics suite: \(resends) SIGUSR1 were followed by no pass within 15 s and were sent again") }
        let after = try scrape(port: port)
        if let sum0 = before.value("cmk_syncer_pass_duration_seconds_sum"), let sum1 = after.value("cmk_syncer_pass_duration_seconds_sum"),
           let count0 = before.value("cmk_syncer_pass_duration_seconds_count"), let count1 = after.value("cmk_syncer_pass_duration_seconds_count") {
            histogram = (sum1 - sum0, count1 - count0)
        }

        // Idle, side by side; the daemon with metrics is scraped every 5 s.
        let cpu0 = running.map { Measure.cpuSeconds(pid: $0.pid) ?? 0 }
        var scrapes: [Double] = []
        var bytes = 0
        let started = Measure.wall()
        while Measure.wall() - started < plan.daemonIdleWindow {
            let (seconds, size) = try timedScrape(port: port)
            scrapes.append(seconds)
            bytes = size
            let next = min(started + 5 * Double(scrapes.count), started + plan.daemonIdleWindow)
            let wait = next - Measure.wall()
            if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
        }
        let window = Measure.wall() - started
        let cpu = running.indices.map { (Measure.cpuSeconds(pid: running[$0].pid) ?? 0) - cpu0[$0] }
        let rss = running.map { Double(Measure.statusBytes("VmRSS", pid: "\($0.pid)") ?? 0) }
        // Anonymous memory (heap, stacks) and file pages (code faulted back in since the last pass dropped them).
        let anon = running.map { Double(Measure.statusBytes("RssAnon", pid: "\($0.pid)") ?? 0) / 1_048_576 }
        let file = running.map { Double(Measure.statusBytes("RssFile", pid: "\($0.pid)") ?? 0) / 1_048_576 }
        let series = Double(after.samples.count)

        let label = "\(accounts.formatted()) directory accounts"
        let off = Distribution(passes[0]), on = Distribution(passes[1])
        results.add(Figure(suite: "metrics", name: "pass (SIGUSR1 → status.json), \(label), metrics on", value: on.p50, unit: "s",
                           anchor: off.p50, anchorName: "the same world's daemon with metrics off, same run, passes alternating",
                           detail: ["passes": Double(on.count), "min s": on.min, "max s": on.max, "off min s": off.min, "off max s": off.max,
                                    "histogram mean s": histogram.map { $0.count > 0 ? $0.sum / $0.count : .nan } ?? .nan,
                                    "load at start": Double(load.split(separator: " ").first ?? "") ?? .nan]))
        results.add(Figure(suite: "metrics", name: "idle RSS after \(Int(window)) s, \(label), metrics on (scraped every 5 s)", value: rss[1] / 1_048_576,
                           unit: "MiB", anchor: rss[0] / 1_048_576, anchorName: "the daemon with metrics off, side by side",
                           detail: ["off MiB": rss[0] / 1_048_576, "RssAnon MiB": anon[1], "RssFile MiB": file[1],
                                    "off RssAnon MiB": anon[0], "off RssFile MiB": file[0]]))
        results.add(Figure(suite: "metrics", name: "idle CPU over \(Int(window)) s, \(label), metrics on (scraped every 5 s)", value: 100 * cpu[1] / window,
                           unit: "%", maximum: 1, detail: ["off %": 100 * cpu[0] / window, "cpu seconds on": cpu[1], "cpu seconds off": cpu[0]]))
        let latency = Distribution(scrapes)
        results.add(Figure(suite: "metrics", name: "scrape (GET /metrics over loopback), \(label)", value: latency.p50, unit: "s",
                           maximum: 0.1, detail: ["max s": latency.max, "scrapes": Double(latency.count), "bytes": Double(bytes), "samples": series]))
        results.notes.append("metrics suite: load average \(load) at the start of the measured passes, \(Machine.load()) after")
    }

    /// Asks `daemon` for a pass (SIGUSR1) and returns the seconds until its status file is rewritten,
    /// and whether the signal had to be sent again: a first run once saw no pass follow a SIGUSR1
    /// sent right after status.json changed (a notifying daemon whose notify socket nobody read; now
    /// reported as a note should it happen again, the pass then timed from the resend).
    static func pass(_ daemon: QuietDaemon, status: String) throws -> (seconds: Double, resent: Bool) {
        let before = modified(status)
        var start = Measure.wall()
        var resent = false
        kill(daemon.pid, SIGUSR1)
        while Measure.wall() - start < 120 {
            guard daemon.process.isRunning else { throw OpenSSLAnchor.Failure(description: "cmk-syncer exited during a pass; log \(daemon.log)") }
            if let now = modified(status), now != before { return (Measure.wall() - start, resent) }
            if !resent, Measure.wall() - start > 15 {
                resent = true
                start = Measure.wall()
                kill(daemon.pid, SIGUSR1)
            }
            usleep(2_000)
        }
        throw OpenSSLAnchor.Failure(description: "no pass within 120 s of SIGUSR1 (sent twice); log \(daemon.log)")
    }

    /// `cmk-syncer run` without a service manager, its output in `run.log`.
    final class QuietDaemon {
        let process = Process()
        let log: String
        var pid: Int32 { process.processIdentifier }

        init(daemon: Daemon, timeout: Double) throws {
            log = daemon.root + "/run.log"
            let before = MetricsBench.modified(daemon.status)
            process.executableURL = URL(fileURLWithPath: try DaemonBench.sibling("cmk-syncer"))
            process.arguments = ["run", "--config", daemon.config]
            var environment = ProcessInfo.processInfo.environment
            for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS", "JOURNAL_STREAM"] { environment[name] = nil }
            process.environment = environment
            FileManager.default.createFile(atPath: log, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            let start = Measure.wall()
            while MetricsBench.modified(daemon.status) == before {
                guard process.isRunning, Measure.wall() - start < timeout else {
                    stop()
                    throw OpenSSLAnchor.Failure(description: "cmk-syncer made no first pass within \(Int(timeout)) s; log \(log)")
                }
                usleep(20_000)
            }
        }

        func stop() {
            guard process.isRunning else { return }
            kill(pid, SIGTERM)
            let deadline = Measure.wall() + 60
            while process.isRunning, Measure.wall() < deadline { usleep(20_000) }
            if process.isRunning { kill(pid, SIGKILL) }
            process.waitUntilExit()
        }
    }

    /// A file's modification time in nanoseconds, or nil.
    static func modified(_ path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mtim.tv_sec * 1_000_000_000 + info.st_mtim.tv_nsec
    }

    static func scrape(port: Int) throws -> PrometheusScrape {
        try PrometheusScrape.fetch(port: port)
    }

    /// `GET /metrics` on a plain socket: the seconds from connect to the last byte, and the body's size.
    static func timedScrape(port: Int) throws -> (Double, Int) {
        let start = Measure.wall()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw OpenSSLAnchor.Failure(description: "socket failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw OpenSSLAnchor.Failure(description: "connect to 127.0.0.1:\(port) failed: errno \(errno)") }
        let request = Array("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard write(fd, request, request.count) == request.count else { throw OpenSSLAnchor.Failure(description: "write failed: errno \(errno)") }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { break }
            response += buffer[..<count]
        }
        let seconds = Measure.wall() - start
        guard response.starts(with: Array("HTTP/1.1 200".utf8)), let end = response.firstRange(of: Array("\r\n\r\n".utf8)) else {
            throw OpenSSLAnchor.Failure(description: "GET /metrics on 127.0.0.1:\(port) did not answer 200: \(String(decoding: response.prefix(200), as: UTF8.self))")
        }
        return (seconds, response.count - end.upperBound)
    }
}
