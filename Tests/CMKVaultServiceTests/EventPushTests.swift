import CMKAzureTestServer
import CMKTesting
import Foundation
import Testing

/// Many hosts on one vault, for real: one cmk-vault and three long-running cmk-syncer daemons
/// (each its own state directory, platform identity and accounts of all five kinds), the customer's
/// rotate, pull and restore runbooks through Microsoft's SDK as the service principal. With
/// events, cmk-vault pushes each change to every daemon's receiver and every host follows within
/// seconds (a pull within 2 s); without, a pull is noticed at the next poll.
@Suite(.serialized) struct EventPushTests {
    typealias Host = OneVaultDaemonTests.Host

    /// A `cmk-syncer run` in the background, its text log in a file.
    final class Daemon: @unchecked Sendable {
        let host: Host
        let process = Process()
        let logPath: String
        var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

        init(_ host: Host) throws {
            self.host = host
            logPath = host.root + "/daemon.log"
            process.executableURL = URL(fileURLWithPath: try VaultProcess.binary("cmk-syncer"))
            process.arguments = ["run", "--config", host.config]
            var environment = ProcessInfo.processInfo.environment
            for name in ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY", "WATCHDOG_USEC"] { environment[name] = nil }
            process.environment = environment
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            process.standardError = process.standardOutput
            try process.run()
        }

        func stop() {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(15)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }

        /// Timestamps of log lines holding `message` (and every one of `fields`) at or after `since`.
        func times(of message: String, with fields: [String] = [], since: Date) -> [(time: Date, line: String)] {
            // The text log's own format (TextLogHandler): no zone, GMT.
            let format = Date.ISO8601FormatStyle().year().month().day().time(includingFractionalSeconds: true)
            return log.split(separator: "\n").compactMap { line in
                guard line.contains(message), fields.allSatisfy({ line.contains($0) }),
                      let stamp = line.split(separator: " ").first, let time = try? format.parse(String(stamp)), time >= since
                else { return nil }
                return (time, String(line))
            }
        }

        /// When the first pass asked for by an event after `since` started: its "Sync pass
        /// finished." line's time less its duration.
        func eventPassStart(since: Date) -> Date? {
            guard let finished = times(of: "Sync pass finished.", with: ["reasons=event"], since: since).first,
                  let range = finished.line.range(of: "duration_ms="),
                  let milliseconds = Int(finished.line[range.upperBound...].prefix { $0.isNumber })
            else { return nil }
            return finished.time.addingTimeInterval(-Double(milliseconds) / 1000)
        }
    }

    /// The vault, the customer's principal and (by default) three hosts with their daemons running.
    final class Fleet {
        let vault: VaultProcess
        let principal: [String: Any]
        /// The key's first version (the customer's create).
        var first = ""
        var daemons: [Daemon] = []
        let secrets: String

        /// - Parameters:
        ///   - sync: the hosts' `sync` section without events (default: a 1-minute poll, no jitter, no key-state probe).
        ///   - hosts: how many hosts (default three).
        init(events: Bool, sync: String = "sync: {interval: 1m, jitter: 0%, pulled-poll-interval: 10s, probe-interval: off}", hosts: Int = 3) throws {
            secrets = NSTemporaryDirectory() + "cmk-event-secrets-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: secrets, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            var subscriptions: [String] = []
            var receivers: [(port: Int, secret: String)] = []
            for index in 1...hosts {
                let secret = secrets + "/host-\(index).secret"
                _ = FileManager.default.createFile(atPath: secret, contents: Data((UUID().uuidString + UUID().uuidString).utf8), attributes: [.posixPermissions: 0o600])
                let port = try LoopbackPort.free()
                receivers.append((port, secret))
                subscriptions.append("    - {name: host-\(index), endpoint: 'http://127.0.0.1:\(port)/events', secret-file: \(secret)}")
            }
            let eventsSection = events ? "events:\n  subscriptions:\n" + subscriptions.joined(separator: "\n") : ""
            vault = try VaultProcess.start(extra: "vault: {master-key-file: master.key, create-master-key: true, retention-days: 7}\n" + eventsSection)
            let admin = try vault.ctl(["admins", "add", "Ada Admin", "--json"])
            principal = try vault.python("key_admin.py", [
                "KEY_ACTION": "principal",
                "ADMIN_CLIENT_ID": try #require(admin["clientId"] as? String), "ADMIN_SECRET": try #require(admin["secret"] as? String),
            ])
            first = try #require(try customer("create")["version"] as? String)
            for (index, receiver) in receivers.enumerated() {
                let platform = try vault.ctl(["identities", "add", "host-\(index + 1).example", "--json"])
                // Events: a 15-minute poll, so only an event explains a pass within seconds. Without:
                // the shortest poll the configuration allows, no jitter.
                let extra = events
                    ? "sync: {jitter: 0%}\nevents: {listen: '127.0.0.1:\(receiver.port)', secret-file: \(receiver.secret), allowed-origins: ['127.0.0.1']}\nlogging: {format: text}"
                    : sync + "\nlogging: {format: text}"
                let host = try Host.make(on: vault, name: "host-\(index + 1)", platform: platform, extra: extra)
                daemons.append(try Daemon(host))
            }
        }

        func customer(_ action: String) throws -> [String: Any] {
            try vault.python("key_admin.py", [
                "KEY_ACTION": action,
                "PRINCIPAL_CLIENT_ID": try #require(principal["clientId"] as? String), "PRINCIPAL_SECRET": try #require(principal["secret"] as? String),
            ])
        }

        /// Waits (at most `timeout`) until `check` holds for every host; the seconds each took from `start`.
        final class Reached: @unchecked Sendable {
            private let lock = NSLock()
            private var seconds: [Double?]
            init(count: Int) { seconds = Array(repeating: nil, count: count) }
            func set(_ index: Int, _ value: Double) { lock.withLock { seconds[index] = value } }
            var values: [Double?] { lock.withLock { seconds } }
        }

        func until(_ what: String, from start: Date, timeout: TimeInterval, _ check: @escaping @Sendable (Daemon) -> Bool) throws -> [Double] {
            var reached: [Double?] = Array(repeating: nil, count: daemons.count)
            let deadline = Date().addingTimeInterval(timeout)
            // The hosts are checked side by side, so one host's slow check does not delay another's.
            let box = Reached(count: daemons.count)
            let daemons = self.daemons
            DispatchQueue.concurrentPerform(iterations: daemons.count) { index in
                while Date() < deadline {
                    if check(daemons[index]) {
                        box.set(index, Date().timeIntervalSince(start))
                        return
                    }
                    usleep(20_000)
                }
            }
            reached = box.values
            let missing = reached.indices.filter { reached[$0] == nil }
            guard missing.isEmpty else {
                let logs = missing.map { "host-\($0 + 1):\n\(daemons[$0].log.suffix(4000))" }.joined(separator: "\n")
                throw VaultTestError("not every host reached '\(what)' within \(Int(timeout)) s: \(missing.map { "host-\($0 + 1)" })\n\(logs)\nvault:\n\(vault.log.suffix(3000))")
            }
            return reached.map { $0! }
        }

        func stop() {
            for daemon in daemons { daemon.stop() }
            vault.stop()
            try? FileManager.default.removeItem(atPath: secrets)
        }
    }

    /// `cmkctl data get ACCOUNT log.txt` on a host: (exit status, output).
    static func read(_ daemon: Daemon, _ account: String) -> (status: Int32, text: String) {
        guard let run = try? daemon.host.run("cmkctl", ["data", "get", account, "log.txt"]) else { return (-1, "") }
        return (run.status, String(decoding: run.output, as: UTF8.self))
    }

    static func accounts(_ daemon: Daemon) -> [String] {
        let number = daemon.host.root.split(separator: "-").last.map(String.init) ?? "1"
        return OneVaultDaemonTests.kinds.map { "\($0)-\(number)" }
    }

    /// Every account on the host bound to `version` (the last report).
    static func bound(_ daemon: Daemon, to version: String) -> Bool {
        reportedAccounts(daemon)?.allSatisfy { $0["binding"] as? String == version && $0["suspended"] as? Bool == false } ?? false
    }

    /// Every account on the host suspended by its daemon (the last report): from then on the host
    /// refuses every read itself, whatever the vault answers.
    static func suspended(_ daemon: Daemon) -> Bool {
        reportedAccounts(daemon)?.allSatisfy { $0["suspended"] as? Bool == true } ?? false
    }

    /// The last report's accounts (`cmkctl status --report-only --json`); nil before the first
    /// pass, which is no failure here (unlike Host.accounts()).
    static func reportedAccounts(_ daemon: Daemon) -> [[String: Any]]? {
        // Its exit status says the key's state (4 while pulled); the JSON is there either way.
        guard let status = try? daemon.host.run("cmkctl", ["status", "--report-only", "--json"]),
              let document = (try? JSONSerialization.jsonObject(with: status.output)) as? [String: Any],
              let accounts = (document["report"] as? [String: Any])?["accounts"] as? [[String: Any]],
              accounts.count == OneVaultDaemonTests.kinds.count
        else { return nil }
        return accounts
    }

    /// Writes one object into every account of every host.
    static func writeObjects(_ fleet: Fleet) throws {
        for daemon in fleet.daemons {
            let object = daemon.host.root + "/object.txt"
            try "customer data".write(toFile: object, atomically: true, encoding: .utf8)
            for account in accounts(daemon) {
                let put = try daemon.host.run("cmkctl", ["data", "put", account, "log.txt", object])
                #expect(put.status == 0, "\(account): \(put.errors)")
            }
        }
    }

    static func returned(_ answer: [String: Any]) throws -> Date {
        Date(timeIntervalSince1970: try #require(answer["returned"] as? Double, "key_admin.py printed no 'returned' time: \(answer)"))
    }

    static func format(_ seconds: [Double]) -> String { seconds.map { String(format: "%.3f s", $0) }.joined(separator: ", ") }

    @Test("events: three daemons follow the customer's rotate, pull (every read refused within 2 s) and restore at once")
    func threeHostsFollowByEvents() throws {
        let fleet = try Fleet(events: true)
        defer { fleet.stop() }
        let first = fleet.first
        _ = try fleet.until("bound to the first version", from: Date(), timeout: 60) { Self.bound($0, to: first) }
        try Self.writeObjects(fleet)

        // Rotate: a new version (then the previous one's expiry set to now): every account on every host rebound.
        let rotation = try fleet.customer("rotate")
        let second = try #require(rotation["version"] as? String)
        let rotated = try Self.returned(rotation)
        let rebound = try fleet.until("every account rebound to the new version", from: rotated, timeout: 20) { Self.bound($0, to: second) }
        let starts = fleet.daemons.map { $0.eventPassStart(since: rotated.addingTimeInterval(-1)) }
        #expect(starts.allSatisfy { $0 != nil }, "a host's rebinding pass was not started by an event:\n\(fleet.daemons.map { $0.log.suffix(3000) }.joined(separator: "\n"))")
        let latency = starts.compactMap { $0?.timeIntervalSince(rotated) }
        print("event latency, SDK create's return -> daemon pass start (journal): \(Self.format(latency)); every account rebound after \(Self.format(rebound))")

        // Pull: every read on every host refused within 2 s of begin_delete_key's return.
        let pull = try fleet.customer("pull")
        let pulled = try Self.returned(pull)
        // The daemon suspends all the host's accounts in one pass: from then on the host itself
        // refuses every read (a read's own unwrap would also fail on the deleted key, so the reads
        // alone would not show that the daemon noticed).
        let refused = try fleet.until("every account suspended", from: pulled, timeout: 20) { Self.suspended($0) }
        let suspendedAt = fleet.daemons.map { $0.eventPassStart(since: pulled.addingTimeInterval(-1))?.timeIntervalSince(pulled) ?? -1 }
        print("pull: every account on each host suspended (reads refused) after \(Self.format(refused)) (the suspending pass started after \(Self.format(suspendedAt)))")
        for (index, seconds) in refused.enumerated() {
            #expect(seconds < 2, "host-\(index + 1): reads refused only after \(seconds) s")
        }
        for daemon in fleet.daemons {
            for account in Self.accounts(daemon) { #expect(Self.read(daemon, account).status == 4, "\(account) still reads") }
        }

        // Restore: all reads work again.
        let restore = try fleet.customer("restore")
        let restored = try Self.returned(restore)
        let readable = try fleet.until("reads work again", from: restored, timeout: 20) { daemon in
            Self.accounts(daemon).allSatisfy { Self.read(daemon, $0) == (0, "customer data") }
        }
        print("restore: every read on each host works after \(Self.format(readable))")
        for daemon in fleet.daemons {
            #expect(daemon.log.contains("A key event was accepted; a pass runs now."))
            #expect(!daemon.log.contains("A key event delivery was refused."), "\(daemon.log.suffix(2000))")
        }
        #expect(!fleet.vault.log.contains("could not be delivered"), "\(fleet.vault.log.suffix(3000))")
    }

    @Test("events off: a pull is noticed by every host within one poll (1 minute, no jitter)")
    func threeHostsNoticeAPullByPolling() throws {
        let fleet = try Fleet(events: false)
        defer { fleet.stop() }
        let first = fleet.first
        _ = try fleet.until("bound to the first version", from: Date(), timeout: 60) { Self.bound($0, to: first) }
        try Self.writeObjects(fleet)
        let pull = try fleet.customer("pull")
        let pulled = try Self.returned(pull)
        let refused = try fleet.until("every account suspended", from: pulled, timeout: 90) { Self.suspended($0) }
        for daemon in fleet.daemons {
            for account in Self.accounts(daemon) { #expect(Self.read(daemon, account).status == 4, "\(account) still reads") }
        }
        print("events off: every account on each host suspended (reads refused) after \(Self.format(refused)) (poll interval 60 s)")
        for (index, seconds) in refused.enumerated() {
            #expect(seconds < 65, "host-\(index + 1): the pull was noticed only after \(seconds) s, more than one poll")
        }
        for daemon in fleet.daemons { #expect(!daemon.log.contains("A key event was accepted")) }
    }
}
