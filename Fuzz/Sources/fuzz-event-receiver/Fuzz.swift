import CMKConfiguration
import CMKCore
@testable import CMKDaemon
@testable import CMKMetrics
@testable import CMKVaultService
import Foundation
import FuzzSupport
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1

// The daemon's key event receiver (docs/configuration.md "events"): the input is the raw bytes a
// client sends on one connection, through the listener's real pipeline (NIO's HTTP/1.1 server
// decoder and error handler, LocalHTTPListener's request handler with its head and body limits) on
// an EmbeddedChannel, then EventReceiver.decide: the method, the Authorization, Content-Type and
// WebHook-Request-Origin/-Rate headers, and the CloudEvents body or batch (EventReceiver.parse).
// Limits are lowered (4 KiB head, 16 KiB body) so that inputs of fuzzing size reach them.
// Checks, for every request the listener hands over: the outcome does not depend on the case of the
// header names; a POST answered 200 carried the secret; a pass is asked for only with status 200 and
// only for events of a key type whose subject is the key; a single event that parses reads the same
// as a batch of one; the answer's body is JSON.
// The seeds are requests the real publisher (cmk-vault's EventPublisher over AsyncHTTPClient) sent:
// FUZZ_EVENT_ENDPOINT=http://127.0.0.1:PORT/ makes this binary publish one event of each kind there
// (docs/testing/fuzzing.md, "Seeds", says how they were captured).
let secretText = "fuzz-event-secret-0123456789"
let keyName = "data-at-rest-rsa2048"
let frozen: EventReceiver.Settings = {
    var settings = EventReceiver.Settings(listen: .tcp(host: "127.0.0.1", port: 0), secret: SecretBytes(copying: Data(secretText.utf8)),
                                          allowedOrigins: ["127.0.0.1", "cmk-vault.example"], keyName: keyName)
    settings.maxHeaderBytes = 4 * 1024
    settings.maxBodyBytes = 16 * 1024
    return settings
}()

final class Seen: @unchecked Sendable {
    var requests: [LocalHTTPListener.Request] = []
}
let seen = Seen()
/// The listener is never started: its group is not used.
nonisolated(unsafe) let loop = EmbeddedEventLoop()
let listener = LocalHTTPListener(
    listen: frozen.listen, limits: .init(maxHeaderBytes: frozen.maxHeaderBytes, maxBodyBytes: frozen.maxBodyBytes), socketMode: 0o600,
    headTooLarge: EventReceiver.response(.init(status: 431, reason: "the request head is larger than the receiver accepts", refused: true)),
    group: loop
) { request in
    seen.requests.append(request)
    return EventReceiver.response(EventReceiver.decide(method: request.head.method, headers: request.head.headers, body: request.body,
                                                       bodyTooLarge: request.bodyTooLarge, settings: frozen))
}

func flipped(_ headers: HTTPHeaders, upper: Bool) -> HTTPHeaders {
    HTTPHeaders(headers.map { (upper ? $0.name.uppercased() : $0.name.lowercased(), $0.value) })
}

func check(_ request: LocalHTTPListener.Request) {
    let outcome = EventReceiver.decide(method: request.head.method, headers: request.head.headers, body: request.body,
                                       bodyTooLarge: request.bodyTooLarge, settings: frozen)
    for upper in [false, true] {
        let other = EventReceiver.decide(method: request.head.method, headers: flipped(request.head.headers, upper: upper), body: request.body,
                                         bodyTooLarge: request.bodyTooLarge, settings: frozen)
        precondition(other == outcome, "the outcome depends on the case of the header names")
    }
    if request.head.method == .POST, outcome.status == 200 {
        precondition(EventReceiver.authorized(request.head.headers["authorization"], secret: frozen.secret), "a POST without the secret was accepted")
    }
    if !outcome.matched.isEmpty {
        precondition(outcome.status == 200 && request.head.method == .POST, "a pass asked for by a refused delivery")
        precondition(outcome.matched.allSatisfy { EventReceiver.keyEventTypes.contains($0.type) }, "a pass asked for by an event of another type")
    }
    let body = Data(request.body.readableBytesView)
    if let single = EventReceiver.parse(body: body, batch: false) {
        guard let batch = EventReceiver.parse(body: Data("[".utf8) + body + Data("]".utf8), batch: true) else {
            preconditionFailure("an event that parses alone does not parse as a batch of one")
        }
        precondition(batch.count == 1 && single.count == 1 && batch[0].id == single[0].id && batch[0].source == single[0].source
                     && batch[0].type == single[0].type && batch[0].subject == single[0].subject, "an event reads differently alone and in a batch")
    }
    let answer = EventReceiver.response(outcome)
    precondition((try? JSONSerialization.jsonObject(with: Data(answer.body))) != nil, "the answer's body is not JSON")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    seen.requests.removeAll(keepingCapacity: true)
    let channel = EmbeddedChannel()
    do {
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
        try channel.pipeline.syncOperations.addHandler(LocalHTTPListener.RequestHandler(listener: listener))
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 40000), promise: nil)
    } catch {
        preconditionFailure("the pipeline: \(error)")
    }
    _ = try? channel.writeInbound(ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size)))
    while let _ = try? channel.readOutbound(as: IOData.self) {}
    _ = try? channel.finish(acceptAlreadyClosed: true)
    for request in seen.requests { check(request) }
    return 0
}

// FUZZ_EVENT_ENDPOINT=<url>: publishes one event of each kind to the endpoint with cmk-vault's real
// publisher (handshake, then a POST per event), then exits. The secret file is written here (0600).
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>) -> CInt {
    guard let endpoint = ProcessInfo.processInfo.environment["FUZZ_EVENT_ENDPOINT"] else { return 0 }
    let secretPath = NSTemporaryDirectory() + "/cmk-fuzz-event-secret-\(getpid())"
    FileManager.default.createFile(atPath: secretPath, contents: Data(secretText.utf8), attributes: [.posixPermissions: 0o600])
    defer { unlink(secretPath) }
    let events = VaultServiceConfiguration.Events(subscriptions: [.init(name: "fuzz-seeds", endpoint: endpoint, secret: .file(secretPath))])
    let publisher = try! EventPublisher(events: events, publicURL: "https://cmk-vault.example", environment: [:], logger: Logger(label: "fuzz"))
    publisher.start()
    let time = Date(timeIntervalSince1970: 1_796_400_000.125)
    for kind in KeyEvent.Kind.allCases {
        let version = [.deleted, .recovered, .purged].contains(kind) ? nil : "0123456789abcdef0123456789abcdef"
        publisher.publish(KeyEvent(kind: kind, keyName: keyName, version: version, notBefore: version == nil ? nil : 1_796_000_000,
                                   expires: kind == .nearExpiry || kind == .expired ? 1_827_536_000 : nil, time: time))
    }
    publisher.publish(KeyEvent(kind: .newVersionCreated, keyName: "another-key", version: "fedcba9876543210fedcba9876543210", time: time))
    blocking {
        try? await Task.sleep(for: .seconds(5))
        await publisher.shutdown()
    }
    exit(0)
}
