import CMKConfiguration
import CMKCore
import CMKDaemon
import Foundation
import Logging
import Synchronization
import Testing

/// The key event receiver over real sockets (loopback TCP and a unix socket): the secret, the
/// content type, the body, the webhook handshake, and which events ask for a pass.
@Suite(.serialized) struct EventReceiverTests {
    static let secret = "s3cret-0123456789abcdef-delivery"

    /// A receiver on a free loopback port (or `unix`), counting the passes it asks for.
    final class Running: Sendable {
        let receiver: EventReceiver
        let listen: SyncerConfiguration.Events.Listen
        let port: Int
        private let passes: CounterHolder
        var count: Int { passes.count.load(ordering: .relaxed) }

        init(unix: String? = nil) async throws {
            listen = unix.map { .unix(path: $0) } ?? .tcp(host: "127.0.0.1", port: 0)
            let settings = EventReceiver.Settings(listen: listen, secret: SecretBytes(copying: Array(EventReceiverTests.secret.utf8)),
                                                  allowedOrigins: ["vault.example.com"], keyName: "data-at-rest-rsa2048")
            let passes = CounterHolder()
            receiver = EventReceiver(settings: settings, logger: Logger(label: "test")) { passes.count.add(1, ordering: .relaxed) }
            port = try await receiver.start()?.port ?? 0
            self.passes = passes
        }

        /// One request with `Connection: close`; (status, headers lower-cased, body).
        func send(_ method: String, headers: [(String, String)], body: String = "") throws -> (status: Int, headers: [String: String], body: String) {
            var text = "\(method) /events HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
            for (name, value) in headers { text += "\(name): \(value)\r\n" }
            text += "\r\n" + body
            let answer = try RawSocket.exchange(listen: listen, port: port, request: Array(text.utf8))
            let parts = answer.components(separatedBy: "\r\n\r\n")
            let lines = parts[0].components(separatedBy: "\r\n")
            let status = Int(lines[0].split(separator: " ")[1]) ?? 0
            var fields: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            return (status, fields, parts.dropFirst().joined(separator: "\r\n\r\n"))
        }
    }

    final class CounterHolder: Sendable { let count = Atomic<Int>(0) }

    static func event(key: String = "data-at-rest-rsa2048", type: String = "Microsoft.KeyVault.KeyNewVersionCreated") -> String {
        """
        {"specversion":"1.0","type":"\(type)","source":"https://vault.example.com","id":"\(UUID().uuidString)","time":"2026-12-05T12:00:00Z",\
        "subject":"\(key)","datacontenttype":"application/json","data":{"Id":"https://vault.example.com/keys/\(key)/abc","VaultName":"vault.example.com",\
        "ObjectType":"Key","ObjectName":"\(key)","Version":"abc","NBF":null,"EXP":null}}
        """
    }

    static let auth = ("Authorization", "Bearer " + secret)
    static let structured = ("Content-Type", "application/cloudevents+json; charset=utf-8")

    @Test("no secret or a wrong one: 401 and no pass; the right one: a pass")
    func secret() async throws {
        let running = try await Running()
        defer { Task { await running.receiver.close() } }
        var answer = try running.send("POST", headers: [Self.structured], body: Self.event())
        #expect(answer.status == 401)
        #expect(answer.headers["www-authenticate"] == "Bearer")
        answer = try running.send("POST", headers: [Self.structured, ("Authorization", "Bearer " + Self.secret.dropLast() + "X")], body: Self.event())
        #expect(answer.status == 401)
        answer = try running.send("POST", headers: [Self.structured, ("Authorization", "Bearer " + Self.secret + "X")], body: Self.event())
        #expect(answer.status == 401)
        answer = try running.send("POST", headers: [Self.structured, ("Authorization", Self.secret)], body: Self.event())
        #expect(answer.status == 401)
        #expect(running.count == 0)
        answer = try running.send("POST", headers: [Self.structured, Self.auth], body: Self.event())
        #expect(answer.status == 200, "\(answer.body)")
        #expect(running.count == 1)
    }

    @Test("a content type other than CloudEvents: 415; malformed JSON or a non-event: 400; no pass")
    func contentTypeAndBody() async throws {
        let running = try await Running()
        defer { Task { await running.receiver.close() } }
        #expect(try running.send("POST", headers: [("Content-Type", "application/json"), Self.auth], body: Self.event()).status == 415)
        #expect(try running.send("POST", headers: [Self.auth], body: Self.event()).status == 415)
        #expect(try running.send("POST", headers: [Self.structured, Self.auth], body: "{\"specversion\":\"1.0\",").status == 400)
        #expect(try running.send("POST", headers: [Self.structured, Self.auth], body: "[" + Self.event() + "]").status == 400, "a batch is not a structured event")
        #expect(try running.send("POST", headers: [Self.structured, Self.auth], body: Self.event().replacingOccurrences(of: "\"specversion\":\"1.0\"", with: "\"specversion\":\"0.3\"")).status == 400)
        #expect(try running.send("POST", headers: [Self.structured, Self.auth], body: Self.event().replacingOccurrences(of: "\"id\":", with: "\"x-id\":")).status == 400)
        #expect(try running.send("PUT", headers: [Self.structured, Self.auth], body: Self.event()).status == 405)
        #expect(try running.send("POST", headers: [Self.structured, Self.auth], body: String(repeating: " ", count: 300_000)).status == 413)
        #expect(running.count == 0)
        // A batch with one event for the key among others: one pass.
        let batch = "[" + Self.event(key: "other-key") + "," + Self.event(type: "CMK.KeyVault.KeyDeleted") + "]"
        #expect(try running.send("POST", headers: [("Content-Type", "application/cloudevents-batch+json"), Self.auth], body: batch).status == 200)
        #expect(running.count == 1)
    }

    @Test("the webhook handshake: an allowed origin is echoed in WebHook-Allowed-Origin, another is refused")
    func handshake() async throws {
        let running = try await Running()
        defer { Task { await running.receiver.close() } }
        var answer = try running.send("OPTIONS", headers: [("WebHook-Request-Origin", "vault.example.com"), ("WebHook-Request-Rate", "120")])
        #expect(answer.status == 200)
        #expect(answer.headers["webhook-allowed-origin"] == "vault.example.com")
        #expect(answer.headers["webhook-allowed-rate"] == "*")
        answer = try running.send("OPTIONS", headers: [("WebHook-Request-Origin", "evil.example.net")])
        #expect(answer.status == 403)
        #expect(answer.headers["webhook-allowed-origin"] == nil)
        #expect(try running.send("OPTIONS", headers: []).status == 400)
        #expect(running.count == 0)
    }

    @Test("an event for another key, or of another type, is answered 200 and ignored; every key type for the key asks for a pass")
    func otherKeyIgnored() async throws {
        let running = try await Running()
        defer { Task { await running.receiver.close() } }
        #expect(try running.send("POST", headers: [Self.structured, Self.auth], body: Self.event(key: "someone-elses-key")).status == 200)
        #expect(try running.send("POST", headers: [Self.structured, Self.auth], body: Self.event(type: "Microsoft.KeyVault.SecretNewVersionCreated")).status == 200)
        #expect(running.count == 0)
        for type in KeyEventTypes.all {
            #expect(try running.send("POST", headers: [Self.structured, Self.auth], body: Self.event(key: "Data-At-Rest-RSA2048", type: type)).status == 200)
        }
        #expect(running.count == KeyEventTypes.all.count)
    }

    @Test("on a unix socket (mode 0600)")
    func unixSocket() async throws {
        let directory = NSTemporaryDirectory() + "cmk-events-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let running = try await Running(unix: directory + "/events.sock")
        var info = stat()
        #expect(stat(directory + "/events.sock", &info) == 0 && info.st_mode & 0o077 == 0, "mode \(String(info.st_mode & 0o777, radix: 8))")
        #expect(try running.send("POST", headers: [Self.structured, Self.auth], body: Self.event()).status == 200)
        #expect(running.count == 1)
        await running.receiver.close()
        #expect(!FileManager.default.fileExists(atPath: directory + "/events.sock"))
    }
}

/// A blocking HTTP exchange over a plain socket: the request as given, the answer until EOF.
enum RawSocket {
    static func exchange(listen: SyncerConfiguration.Events.Listen, port: Int, request: [UInt8]) throws -> String {
        let fd: Int32
        switch listen {
        case .tcp:
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard result == 0 else { close(fd); throw CocoaError(.fileReadUnknown) }
        case .unix(let path):
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
            }
            let result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            guard result == 0 else { close(fd); throw CocoaError(.fileReadUnknown) }
        }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var offset = 0
        while offset < request.count {
            let sent = request[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { break }  // the receiver may answer (413) and close before reading everything
            offset += sent
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            answer += buffer[0..<count]
        }
        return String(decoding: answer, as: UTF8.self)
    }
}
