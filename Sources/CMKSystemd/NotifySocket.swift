import Foundation

/// The sending side of the `sd_notify(3)` protocol without blocking: one datagram to the
/// `AF_UNIX` socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace),
/// sent with `MSG_DONTWAIT`.
///
/// libsystemd's `sd_notify` sends with a blocking `sendmsg`: when nobody reads the socket (a
/// supervisor that set `$NOTIFY_SOCKET` and stopped reading, a test harness, a wedged manager)
/// its queue fills after a dozen datagrams and the next status update blocks the calling thread
/// for good — here a thread of Swift's cooperative pool, so the daemon's scheduler stalls. systemd
/// itself always reads, but a key daemon must not depend on its supervisor to keep running.
/// A datagram that cannot be queued is dropped at once when it only carries `STATUS=` (the next
/// one replaces it anyway); one that changes the service's state (`READY=1`, `RELOADING=1`,
/// `STOPPING=1`, `ERRNO=`, `WATCHDOG=1`, `EXTEND_TIMEOUT_USEC=`) is retried every 10 ms for up to
/// `essentialPatience`, then dropped. Either way the caller gets `false` and carries on.
enum NotifySocket {
    static let essentialPatience: Duration = .seconds(2)

    enum Outcome: Equatable, Sendable {
        case sent
        case noSocket
        case queueFull
        case failed(Int32)
    }

    static func send(_ message: String, to address: String, essential: Bool) -> Outcome {
        guard let (storage, length) = socketAddress(address) else { return .failed(EINVAL) }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failed(errno) }
        defer { close(fd) }
        let bytes = Array(message.utf8)
        let deadline = ContinuousClock.now + (essential ? essentialPatience : .zero)
        while true {
            var address = storage
            let sent = bytes.withUnsafeBytes { buffer in
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL), $0, length)
                    }
                }
            }
            if sent == bytes.count { return .sent }
            let code = sent < 0 ? errno : EMSGSIZE
            switch code {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK, ENOBUFS:
                guard ContinuousClock.now < deadline else { return .queueFull }
                usleep(10_000)
            case ENOENT, ECONNREFUSED: return .noSocket
            default: return .failed(code)
            }
        }
    }

    /// `sockaddr_un` for a path (`/run/systemd/notify`) or an abstract name (`@…`), and its length.
    static func socketAddress(_ address: String) -> (sockaddr_un, socklen_t)? {
        var bytes = Array(address.utf8)
        guard let first = bytes.first, first == UInt8(ascii: "/") || first == UInt8(ascii: "@") else { return nil }
        var storage = sockaddr_un()
        storage.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: storage.sun_path)
        let abstract = first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        guard bytes.count < capacity else { return nil }
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            raw.copyBytes(from: bytes)
            if !abstract { raw[bytes.count] = 0 }
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path) ?? 2
        // A path's length counts its NUL; an abstract name's is exactly its bytes.
        return (storage, socklen_t(pathOffset + bytes.count + (abstract ? 0 : 1)))
    }
}
