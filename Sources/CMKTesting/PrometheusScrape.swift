import Foundation

/// One scrape of a Prometheus text exposition (format 0.0.4) for tests that run the real daemon:
/// fetched with `curl` (over TCP or a unix socket), checked with `promtool check metrics`
/// (Debian's `prometheus` package, installed by scripts/install-deps.sh) and read sample by sample.
public struct PrometheusScrape: Sendable {
    /// A tool the check needs is missing, or it failed: the message says which and why.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// The exposition as served.
    public let text: String
    /// Every sample: the metric name, its labels and its value.
    public let samples: [Sample]

    public struct Sample: Sendable, Hashable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public init(text: String) throws {
        self.text = text
        var samples: [Sample] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                throw Failure(description: "the exposition has a line that is not a sample: \(line)")
            }
            let series = line[..<space]
            var labels: [String: String] = [:]
            var name = String(series)
            if let open = series.firstIndex(of: "{"), series.last == "}" {
                name = String(series[..<open])
                let inside = series[series.index(after: open)..<series.index(before: series.endIndex)]
                // Our label values hold no quotes or commas; `name="value"` pairs split on `",`.
                for pair in inside.components(separatedBy: "\",") where !pair.isEmpty {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else { throw Failure(description: "a label pair cannot be read: \(pair) in \(line)") }
                    labels[String(parts[0])] = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                }
            }
            samples.append(Sample(name: name, labels: labels, value: value))
        }
        self.samples = samples
    }

    /// The value of the one sample named `name` with exactly `labels`, or nil.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    /// The sum over every sample named `name` whose labels include `matching`.
    public func sum(_ name: String, matching: [String: String] = [:]) -> Double {
        samples.filter { sample in sample.name == name && matching.allSatisfy { sample.labels[$0.key] == $0.value } }.map(\.value).reduce(0, +)
    }

    /// Fetches `GET path` from `127.0.0.1:port` (or `[::1]`) or a unix socket; throws unless the answer is 200.
    public static func fetch(host: String = "127.0.0.1", port: Int? = nil, unixSocket: String? = nil, path: String = "/metrics") throws -> PrometheusScrape {
        var arguments = ["-sS", "--fail", "--max-time", "10"]
        if let unixSocket { arguments += ["--unix-socket", unixSocket, "http://localhost\(path)"] }
        else { arguments += ["http://\(host.contains(":") ? "[\(host)]" : host):\(port ?? 0)\(path)"] }
        let (status, output, errors) = try run("curl", arguments)
        guard status == 0 else { throw Failure(description: "curl \(arguments.joined(separator: " ")) exited \(status): \(errors)") }
        return try PrometheusScrape(text: output)
    }

    /// `promtool check metrics` on this scrape; throws with promtool's output when it finds a problem.
    public func check() throws {
        let (status, output, errors) = try Self.run("promtool", ["check", "metrics"], input: Data(text.utf8))
        guard status == 0 else {
            throw Failure(description: "promtool check metrics exited \(status):\n\(output)\(errors)\nthe scrape:\n\(text)")
        }
    }

    /// Runs a tool found on PATH (or in /usr/bin); a missing tool throws saying what installs it.
    public static func run(_ tool: String, _ arguments: [String], input: Data? = nil) throws -> (status: Int32, output: String, errors: String) {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin", "/bin"]
        guard let path = directories.map({ $0 + "/" + tool }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw Failure(description: "\(tool) is not installed: scripts/install-deps.sh installs it (Debian package \(tool == "promtool" ? "prometheus" : tool))")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let out = Pipe(), err = Pipe(), inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        try process.run()
        if let input {
            inPipe.fileHandleForWriting.write(input)
            try? inPipe.fileHandleForWriting.close()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}
