import CMKConfiguration
import Foundation
import Logging
import Synchronization
import Testing
@testable import CMKVaultService

/// The vault side of key events without processes: what a keys API answer raises, the CloudEvent
/// it becomes, and the retries against a receiver that keeps failing.
@Suite(.serialized) struct EventPublisherTests {
    @Test("a successful create, rotate, delete, recover or purge raises its event; other operations none")
    func eventsFromAnswers() throws {
        let bundle = Data(#"{"key":{"kid":"https://v.example/keys/Data-Key/0123abcd","kty":"RSA-HSM"},"attributes":{"enabled":true,"nbf":1700000000,"exp":1800000000}}"#.utf8)
        let created = try #require(KeyEvent(operation: "key-rotated", segments: ["keys", "data-key", "rotate"], responseBody: bundle))
        #expect(created.kind == .newVersionCreated && created.keyName == "Data-Key" && created.version == "0123abcd")
        #expect(created.notBefore == 1_700_000_000 && created.expires == 1_800_000_000)
        let deleted = try #require(KeyEvent(operation: "key-deleted", segments: ["keys", "data-key"], responseBody: bundle))
        #expect(deleted.kind == .deleted && deleted.version == nil && deleted.expires == nil)
        #expect(KeyEvent(operation: "key-recovered", segments: ["deletedkeys", "k", "recover"], responseBody: Data())?.kind == .recovered)
        #expect(KeyEvent(operation: "key-purged", segments: ["deletedkeys", "k"], responseBody: Data())?.kind == .purged)
        #expect(KeyEvent(operation: "key-created", segments: ["keys", "k", "create"], responseBody: Data())?.kind == .newVersionCreated)
        for operation in ["key-updated", "key-unwrapkey", "key-wrapkey", "key-rotation-policy-updated", "key-request"] {
            #expect(KeyEvent(operation: operation, segments: ["keys", "k"], responseBody: bundle) == nil, "\(operation)")
        }
        #expect(KeyEvent.Kind.allCases.map(\.rawValue) == KeyEventTypes.all, "the receiver and the configuration know the same types")
    }

    static func secretFile() throws -> String {
        let path = NSTemporaryDirectory() + "cmk-publisher-" + UUID().uuidString + ".secret"
        _ = FileManager.default.createFile(atPath: path, contents: Data("0123456789abcdef-secret".utf8), attributes: [.posixPermissions: 0o600])
        return path
    }

    @Test("the CloudEvent: specversion 1.0, type, source, id, time, subject and Event Grid's Key Vault data")
    func cloudEventShape() async throws {
        let secret = try Self.secretFile()
        defer { unlink(secret) }
        let publisher = try EventPublisher(events: .init(subscriptions: [.init(name: "h", endpoint: "http://127.0.0.1:9/e", secret: .file(secret))]),
                                           publicURL: "https://vault.example.com:8443", environment: [:], logger: Logger(label: "test"))
        let event = KeyEvent(kind: .newVersionCreated, keyName: "data-key", version: "abc", notBefore: nil, expires: 1_800_000_000,
                             time: Date(timeIntervalSince1970: 1_780_000_000.25))
        let object = try #require(try JSONSerialization.jsonObject(with: publisher.cloudEvent(event)) as? [String: Any])
        #expect(object["specversion"] as? String == "1.0")
        #expect(object["type"] as? String == "Microsoft.KeyVault.KeyNewVersionCreated")
        #expect(object["source"] as? String == "https://vault.example.com:8443")
        #expect(object["subject"] as? String == "data-key")
        #expect((object["id"] as? String)?.isEmpty == false)
        #expect(object["time"] as? String == "2026-05-28T20:26:40.250Z")
        let data = try #require(object["data"] as? [String: Any])
        #expect(data["Id"] as? String == "https://vault.example.com:8443/keys/data-key/abc")
        #expect(data["VaultName"] as? String == "vault.example.com" && data["ObjectType"] as? String == "Key" && data["ObjectName"] as? String == "data-key")
        #expect(data["Version"] as? String == "abc" && data["NBF"] is NSNull && data["EXP"] as? Int == 1_800_000_000)
        let second = try #require(try JSONSerialization.jsonObject(with: publisher.cloudEvent(event)) as? [String: Any])
        #expect(second["id"] as? String != object["id"] as? String, "every event has its own id")
        await publisher.shutdown()
    }

    @Test("a receiver that keeps failing: the handshake is tried maxAttempts times with backoff, then the event is dropped; publish never waits")
    func retriesThenDrops() async throws {
        let server = try FailingServer()
        defer { server.stop() }
        let secret = try Self.secretFile()
        defer { unlink(secret) }
        let publisher = try EventPublisher(events: .init(subscriptions: [.init(name: "h", endpoint: "http://127.0.0.1:\(server.port)/e", secret: .file(secret))]),
                                           publicURL: "https://vault.example.com", environment: [:], logger: Logger(label: "test"),
                                           backoff: { _ in .milliseconds(20) })
        publisher.start()
        let before = ContinuousClock.now
        publisher.publish(KeyEvent(kind: .deleted, keyName: "k"))
        #expect(ContinuousClock.now - before < .milliseconds(50), "publish must not wait for the delivery")
        let deadline = ContinuousClock.now + .seconds(20)
        while server.seen.requests.load(ordering: .relaxed) < EventPublisher.maxAttempts, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(server.seen.requests.load(ordering: .relaxed) == EventPublisher.maxAttempts, "one handshake per try, no more after the last")
        #expect(server.seen.methods.withLock { $0 }.allSatisfy { $0 == "OPTIONS" }, "no event (and no secret) before a handshake succeeds")
        await publisher.shutdown()
    }

    /// A loopback listener answering every request 503 and closing; counts the requests.
    final class FailingServer {
        final class Seen: Sendable {
            let requests = Atomic<Int>(0)
            let methods = Mutex<[String]>([])
        }
        let fd: Int32
        let port: Int
        let seen = Seen()
        let thread: Thread

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            guard withUnsafePointer(to: &address, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }) == 0, listen(fd, 16) == 0,
                  withUnsafeMutablePointer(to: &address, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }) == 0
            else { close(fd); throw VaultTestError("cannot listen on loopback") }
            self.fd = fd
            port = Int(UInt16(bigEndian: address.sin_port))
            let seen = seen
            thread = Thread {
                while true {
                    let client = accept(fd, nil, nil)
                    if client < 0 { return }
                    var buffer = [UInt8](repeating: 0, count: 8192)
                    let count = recv(client, &buffer, buffer.count, 0)
                    if count > 0 {
                        let method = String(decoding: buffer[0..<count], as: UTF8.self).split(separator: " ").first.map(String.init) ?? "?"
                        seen.methods.withLock { $0.append(method) }
                        seen.requests.add(1, ordering: .relaxed)
                        let answer = Array("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
                        _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    }
                    close(client)
                }
            }
            thread.start()
        }

        func stop() {
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
        }
    }
}
