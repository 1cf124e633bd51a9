import Foundation

/// What the numbers were measured on.
enum Machine {
    static func describe() -> [String: String] {
        var info: [String: String] = [:]
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        info["cpu"] = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces) } ?? "unknown"
        info["cores"] = "\(ProcessInfo.processInfo.activeProcessorCount)"
        info["memory"] = String(format: "%.1f GiB", Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824)
        info["kernel"] = ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "unknown")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        info["openssl"] = OpenSSLAnchor.version()
        info["swift"] = (try? OpenSSLAnchor.command(["swift", "--version"], hint: "put the toolchain on PATH"))?
            .split(separator: "\n").first.map(String.init) ?? "unknown"
        info["load"] = load()
        return info
    }

    /// The 1-, 5- and 15-minute load averages.
    static func load() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "").split(separator: " ").prefix(3).joined(separator: " ")
    }
}
