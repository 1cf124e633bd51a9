import Foundation

// The service manager's side of `sd_notify(3)` for tests that run a daemon with `$NOTIFY_SOCKET`
// (the systemd tests, the security-log daemon tests, the slow-vault watchdog tests).

/// One `sd_notify` datagram as received, with the time it arrived.
public struct NotifyMessage: Sendable, CustomStringConvertible {
    public var at: ContinuousClock.Instant
    public var text: String

    /// The `KEY=value` assignments, in order.
    public var assignments: [(key: String, value: String)] {
        text.split(separator: "\n").map { line in
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
    }
    public var keys: [String] { assignments.map(\.key) }
    public subscript(key: String) -> String? { assignments.first { $0.key == key }?.value }
    public var description: String { text.replacingOccurrences(of: "\n", with: " | ") }
}

/// The service manager's side of `$NOTIFY_SOCKET`: an AF_UNIX datagram socket bound in a
/// temporary directory, read with timeouts.
public final class NotifyListener {
    /// Why the socket could not be made.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let path: String
    private let fd: Int32

    /// A socket at `directory/notify.sock`.
    public convenience init(directory: String) throws { try self.init(path: directory + "/notify.sock") }

    public init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket(AF_UNIX, SOCK_DGRAM): errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw Failure(description: "socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw Failure(description: "bind(\(path)): errno \(errno)") }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The next datagram, or nil when none arrives before the deadline.
    public func next(before deadline: ContinuousClock.Instant) -> NotifyMessage? {
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return nil }
            let ms = Int32(max(1, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, ms)
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { continue }
            return NotifyMessage(at: .now, text: String(decoding: buffer[..<count], as: UTF8.self))
        }
    }

    public func next(within timeout: Duration) -> NotifyMessage? { next(before: .now + timeout) }

    /// Every datagram that arrives within `duration`.
    public func collect(for duration: Duration) -> [NotifyMessage] {
        let deadline = ContinuousClock.now + duration
        var messages: [NotifyMessage] = []
        while let message = next(before: deadline) { messages.append(message) }
        return messages
    }

    /// The next message that is not a watchdog ping (pings are checked by their own tests).
    public func nextEvent(within timeout: Duration) -> NotifyMessage? {
        let deadline = ContinuousClock.now + timeout
        while let message = next(before: deadline) {
            if message.keys != ["WATCHDOG"] { return message }
        }
        return nil
    }

    /// The next `STATUS=` value, skipping other notifications; nil after the timeout.
    public func nextStatus(within timeout: Duration) -> String? {
        let deadline = ContinuousClock.now + timeout
        while let message = next(before: deadline) {
            if let status = message["STATUS"] { return status }
        }
        return nil
    }
}
