@testable import CMKSystemd
import CMKTesting
import Foundation
import Testing

/// `$NOTIFY_SOCKET` that nobody reads: libsystemd's blocking `sd_notify` stalled the daemon after a
/// dozen status updates; `NotifySocket` drops instead (status at once, state changes after 2 s).
@Suite("sd_notify without blocking", .serialized, .timeLimit(.minutes(2)))
struct NotifySocketTests {
    @Test("a full queue drops STATUS lines at once; what was queued first arrives intact and in order")
    func fullQueueDropsStatus() throws {
        let directory = try TemporaryDirectory(prefix: "notify-full")
        let listener = try NotifyListener(directory: directory.path)
        var outcomes: [NotifySocket.Outcome] = []
        for index in 0..<2_000 {
            outcomes.append(NotifySocket.send("STATUS=update \(index)", to: listener.path, essential: false))
        }
        let sent = outcomes.filter { $0 == .sent }.count
        let full = outcomes.filter { $0 == .queueFull }.count
        #expect(sent > 0 && sent + full == outcomes.count, "outcomes other than sent/queue full: \(Set(outcomes.map { "\($0)" }))")
        #expect(full > 0, "2,000 datagrams never filled an unread socket's queue: the test did not reach the case it is for")
        let first = try #require(listener.next(within: .seconds(2)), "nothing was queued")
        #expect(first.text == "STATUS=update 0")
        let second = try #require(listener.next(within: .seconds(2)))
        #expect(second.text == "STATUS=update 1")
        print("notify socket: \(sent) of 2,000 status lines queued on an unread socket, \(full) dropped without waiting")
    }

    @Test("a state change waits for room up to 2 s, then gives up; with room it is sent")
    func essentialWaitsThenGivesUp() throws {
        let directory = try TemporaryDirectory(prefix: "notify-essential")
        let listener = try NotifyListener(directory: directory.path)
        while NotifySocket.send("STATUS=filler", to: listener.path, essential: false) == .sent {}
        let started = ContinuousClock.now
        let refused = NotifySocket.send("READY=1", to: listener.path, essential: true)
        let waited = ContinuousClock.now - started
        #expect(refused == .queueFull)
        #expect(waited >= NotifySocket.essentialPatience, "gave up after \(waited), before its patience")
        #expect(listener.next(within: .seconds(1))?.text == "STATUS=filler")
        #expect(NotifySocket.send("READY=1", to: listener.path, essential: true) == .sent, "one datagram read: room for one more")
    }

    @Test("addresses: a path, an abstract name (@), nothing else; a missing socket is noSocket")
    func addresses() throws {
        #expect(NotifySocket.socketAddress("relative/notify") == nil)
        #expect(NotifySocket.socketAddress("vsock:2:1234") == nil)
        #expect(NotifySocket.socketAddress("/" + String(repeating: "x", count: 200)) == nil)
        let (_, pathLength) = try #require(NotifySocket.socketAddress("/run/n"))
        #expect(pathLength == 2 + 6 + 1)
        let (_, abstractLength) = try #require(NotifySocket.socketAddress("@cmk-test"))
        #expect(abstractLength == 2 + 9)
        #expect(NotifySocket.send("READY=1", to: "/nonexistent-\(getpid())/notify", essential: true) == .noSocket)

        // A real abstract socket: what the datagram says arrives.
        let name = "@cmk-notify-test-\(getpid())"
        let receiver = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(receiver >= 0)
        defer { close(receiver) }
        var (address, length) = try #require(NotifySocket.socketAddress(name))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(receiver, $0, length) } }
        try #require(bound == 0, "bind(\(name)): errno \(errno)")
        #expect(NotifySocket.send("STATUS=abstract", to: name, essential: false) == .sent)
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = recv(receiver, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        #expect(count > 0 && String(decoding: buffer[0..<max(count, 0)], as: UTF8.self) == "STATUS=abstract")
    }

    @Test("the daemon keeps running passes when nobody reads its NOTIFY_SOCKET, and stops on SIGTERM")
    func daemonWithUnreadSocket() throws {
        let daemon = try DaemonHarness()
        func passes() -> Int { daemon.log.components(separatedBy: "Sync pass finished.").count - 1 }
        let deadline = ContinuousClock.now + .seconds(60)
        while passes() < 1, ContinuousClock.now < deadline { usleep(50_000) }
        try #require(passes() >= 1, "no first pass; log:\n\(daemon.log)")
        // Each pass sends status lines; libsystemd's blocking send stalled after about a dozen.
        for wanted in 2...25 {
            daemon.signal(SIGUSR1)
            let passDeadline = ContinuousClock.now + .seconds(20)
            while passes() < wanted, ContinuousClock.now < passDeadline { usleep(20_000) }
            try #require(passes() >= wanted, "pass \(wanted) never finished: the daemon is stuck (sd_notify blocking?); log tail:\n\(daemon.log.suffix(2_000))")
        }
        daemon.signal(SIGTERM)
        let code = daemon.waitForExit(timeout: .seconds(20))
        #expect(code == 0, "exit after SIGTERM with a full notify queue: \(String(describing: code))")
        print("notify socket: 25 passes and a clean stop with an unread NOTIFY_SOCKET")
    }
}
