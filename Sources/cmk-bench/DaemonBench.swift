import Foundation
import Glibc

/// Suite 5: the real `cmk-syncer run` binary on a temporary embedded configuration, with this
/// program as its service manager (`$NOTIFY_SOCKET`).
enum DaemonBench {
    static func run(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        // Five accounts use each kind's default driver; larger sets the directory driver, and
        // 10,000 SQLite accounts once more for the cold start (issue 20: READY within 3 s of a restart).
        let cases = plan.daemonAccounts.map { ($0, $0 > 5 ? "directory" : "mixed") } + plan.daemonAccounts.filter { $0 >= 10_000 }.map { ($0, "sqlite") }
        for (count, driver) in cases {
            let root = "\(scratch)/daemon-\(count)-\(driver)"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let config = try writeConfig(root: root, accounts: count, driver: driver == "sqlite" ? driver : nil)
            // First start creates the vault, the key and every account; the second finds them bound.
            let first = try start(config: config, root: root, log: root + "/first.log")
            let firstReady = try first.waitReady(timeout: plan.daemonReadyTimeout)
            try first.stop()
            let second = try start(config: config, root: root, log: root + "/second.log")
            let secondReady = try second.waitReady(timeout: plan.daemonReadyTimeout)
            let cpu0 = Measure.cpuSeconds(pid: second.pid) ?? 0
            let window = plan.daemonIdleWindow
            try await Task.sleep(for: .seconds(window))
            let cpu = (Measure.cpuSeconds(pid: second.pid) ?? 0) - cpu0
            let rss = Measure.statusBytes("VmRSS", pid: "\(second.pid)") ?? 0
            let peak = Measure.statusBytes("VmHWM", pid: "\(second.pid)") ?? 0
            try second.stop()
            let label = "\(count.formatted()) \(driver) accounts"
            results.add(Figure(suite: "daemon", name: "start → READY, first start (creates), \(label)", value: firstReady, unit: "s",
                               detail: ["status accounts in sync": Double(first.inSync ?? -1)]))
            results.add(Figure(suite: "daemon", name: "start → READY, restart (all bound), \(label)", value: secondReady, unit: "s",
                               maximum: driver == "sqlite" ? 3 : count >= 10_000 ? 30 : 5, detail: ["status accounts in sync": Double(second.inSync ?? -1)]))
            results.add(Figure(suite: "daemon", name: "idle RSS after \(Int(window)) s, \(label)", value: Double(rss), unit: "B",
                               maximum: count >= 10_000 ? 48 * 1_048_576 : 24 * 1_048_576, detail: ["VmHWM B": Double(peak)]))
            results.add(Figure(suite: "daemon", name: "idle CPU over \(Int(window)) s, \(label)", value: 100 * cpu / window, unit: "%",
                               maximum: 1, detail: ["cpu seconds": cpu, "window seconds": window]))
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    /// Every account on `driver`; without one, five accounts use each kind's default driver (the
    /// embedded default) and larger sets the directory driver.
    static func writeConfig(root: String, accounts: Int, driver: String? = nil) throws -> String {
        let kinds = ["file", "sql", "audit", "analytics", "secret-store"]
        let driver = (driver ?? (accounts > 5 ? "directory" : nil)).map { ", driver: \($0)" } ?? ""
        var yaml = """
            state-directory: \(root)/state
            vault:
              provider: local
              local: {master-key-file: \(root)/state/master.key, create: true}
            sync: {interval: 15m, jitter: 0%, start-timeout: 10m}
            accounts:

            """
        for index in 0..<accounts {
            yaml += "  - {name: acct-\(index), kind: \(kinds[index % kinds.count])\(driver), create: true}\n"
        }
        let path = root + "/cmk-syncer.yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func start(config: String, root: String, log: String) throws -> RunningDaemon {
        try RunningDaemon(binary: try sibling("cmk-syncer"), arguments: ["run", "--config", config], socketPath: root + "/notify.sock", log: log)
    }

    /// An executable built next to this one.
    static func sibling(_ name: String) throws -> String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let path = (exe as NSString).deletingLastPathComponent + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw OpenSSLAnchor.Failure(description: "\(path) is missing: build it with `swift build -c release` (make bench does)")
        }
        return path
    }
}

/// A daemon process and the notify socket it reports to.
final class RunningDaemon {
    let process = Process()
    let launched: Double
    let log: String
    private let fd: Int32
    private let socketPath: String
    /// "N/M accounts in sync" from the READY status line.
    private(set) var inSync: Int?

    init(binary: String, arguments: [String], socketPath: String, log: String) throws {
        self.socketPath = socketPath
        self.log = log
        unlink(socketPath)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = fd
        guard fd >= 0 else { throw OpenSSLAnchor.Failure(description: "socket(AF_UNIX, SOCK_DGRAM) failed: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw OpenSSLAnchor.Failure(description: "notify socket path too long: \(socketPath); use a shorter --scratch")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw OpenSSLAnchor.Failure(description: "bind(\(socketPath)) failed: errno \(errno)") }
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = socketPath
        environment.removeValue(forKey: "JOURNAL_STREAM")
        environment.removeValue(forKey: "WATCHDOG_USEC")
        process.environment = environment
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        launched = Measure.wall()
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// Seconds from launch to `READY=1`. Fails if the daemon exits or stays silent.
    func waitReady(timeout: Double) throws -> Double {
        let deadline = launched + timeout
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while Measure.wall() < deadline {
            guard process.isRunning else {
                throw OpenSSLAnchor.Failure(description: "cmk-syncer exited with \(process.terminationStatus) before READY=1; log \(log)")
            }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { continue }
            let text = String(decoding: buffer[..<count], as: UTF8.self)
            let lines = text.split(separator: "\n")
            guard lines.contains("READY=1") else { continue }
            let at = Measure.wall() - launched
            if let status = lines.first(where: { $0.hasPrefix("STATUS=") }), let range = status.range(of: #"\d+/\d+ accounts in sync"#, options: .regularExpression) {
                inSync = Int(status[range].split(separator: "/")[0])
            }
            return at
        }
        throw OpenSSLAnchor.Failure(description: "no READY=1 within \(Int(timeout)) s; log \(log)")
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 60 s).
    func stop() throws {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = Measure.wall() + 60
        while process.isRunning, Measure.wall() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            throw OpenSSLAnchor.Failure(description: "cmk-syncer did not stop within 60 s of SIGTERM; log \(log)")
        }
    }

    deinit {
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        close(fd)
        unlink(socketPath)
    }
}
