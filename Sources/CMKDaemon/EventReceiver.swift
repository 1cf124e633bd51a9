import CMKConfiguration
import CMKCore
import CMKMetrics
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The daemon's receiver of pushed key events (`events` in cmk-syncer.yaml; docs/configuration.md):
/// a small HTTP/1.1 listener on loopback or a unix socket for CloudEvents 1.0 in the shape of
/// Azure Event Grid's Key Vault events, sent by cmk-vault or by Event Grid itself.
///
/// - `OPTIONS` is the CloudEvents webhook validation handshake: a `WebHook-Request-Origin` in
///   `events.allowed-origins` is answered 200 with `WebHook-Allowed-Origin`; any other 403.
/// - `POST` needs `Authorization: Bearer <secret>` (401; compared in constant time), a content type
///   of `application/cloudevents+json` or `application/cloudevents-batch+json` (415) and CloudEvents
///   that parse (400). An event of a Key Vault type whose subject is the configured key asks the
///   scheduler for a pass (coalesced with any pass already asked for); other events are answered
///   200 and ignored.
///
/// A lost event costs only latency: the daemon still polls (`sync.interval`, `sync.pulled-poll-interval`).
public final class EventReceiver: Sendable {
    /// What a delivery asked of the daemon.
    public struct Settings: Sendable {
        public var listen: SyncerConfiguration.Events.Listen
        public var secret: SecretBytes
        public var allowedOrigins: [String]
        /// The key the daemon follows (`vault.key`); events for other keys are ignored.
        public var keyName: String
        public var maxBodyBytes = 256 * 1024
        public var maxHeaderBytes = 16 * 1024

        public init(listen: SyncerConfiguration.Events.Listen, secret: SecretBytes, allowedOrigins: [String], keyName: String) {
            self.listen = listen
            self.secret = secret
            self.allowedOrigins = allowedOrigins
            self.keyName = keyName
        }
    }

    /// The event types that concern a key: Event Grid's three and cmk-vault's own three.
    public static let keyEventTypes = Set(KeyEventTypes.all)

    /// The answer to one request, decided without I/O (``decide(method:headers:body:bodyTooLarge:)``).
    public struct Outcome: Sendable, Equatable {
        public var status: Int
        public var headers: [(String, String)] = []
        /// A short static reason for the body and the journal.
        public var reason: String
        /// The matching events (type, id): non-empty means a pass is asked for.
        public var matched: [Match] = []
        /// Set on refusals worth a journal line.
        public var refused = false

        public struct Match: Sendable, Equatable {
            public var type: String
            public var id: String
            public var source: String
        }

        public static func == (lhs: Outcome, rhs: Outcome) -> Bool {
            lhs.status == rhs.status && lhs.reason == rhs.reason && lhs.matched == rhs.matched && lhs.refused == rhs.refused
                && lhs.headers.map { "\($0.0):\($0.1)" } == rhs.headers.map { "\($0.0):\($0.1)" }
        }
    }

    private let settings: Settings
    private let logger: Logger
    private let onEvent: @Sendable () -> Void
    private let group: any EventLoopGroup
    private let listener = Mutex<LocalHTTPListener?>(nil)

    /// - Parameter onEvent: called on an event loop for each delivery with a matching event; must not block.
    public init(settings: Settings, logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, onEvent: @escaping @Sendable () -> Void) {
        self.settings = settings
        self.logger = logger
        self.onEvent = onEvent
        self.group = group
    }

    /// Binds the listening socket (a unix socket is 0600); returns the bound address (a TCP port of 0 picks a free one).
    @discardableResult
    public func start() async throws -> SocketAddress? {
        let tooLarge = Self.response(Outcome(status: 431, reason: "the request head is larger than the receiver accepts", refused: true))
        let http = LocalHTTPListener(listen: settings.listen, limits: .init(maxHeaderBytes: settings.maxHeaderBytes, maxBodyBytes: settings.maxBodyBytes),
                                     socketMode: 0o600, headTooLarge: tooLarge, group: group) { [self] request in
            let outcome = decide(method: request.head.method, headers: request.head.headers, body: request.body, bodyTooLarge: request.bodyTooLarge)
            handle(outcome, remote: request.remote)
            return Self.response(outcome)
        }
        let address = try await http.start()
        listener.withLock { $0 = http }
        logger.info("The key event receiver is listening.", metadata: ["cmk_events_listen": "\(settings.listen)"])
        return address
    }

    /// Closes the listening socket (connections in flight finish).
    public func close() async {
        await listener.withLock { $0 }?.close()
    }

    /// An outcome as the JSON answer.
    static func response(_ outcome: Outcome) -> LocalHTTPListener.Response {
        LocalHTTPListener.Response(status: outcome.status, headers: outcome.headers, contentType: "application/json",
                                   body: Array("{\"status\":\(outcome.status),\"reason\":\"\(outcome.reason)\"}\n".utf8))
    }

    // MARK: Deciding

    /// The answer to a request: method, headers (names case-insensitive) and body.
    public func decide(method: HTTPMethod, headers: HTTPHeaders, body: ByteBuffer, bodyTooLarge: Bool) -> Outcome {
        Self.decide(method: method, headers: headers, body: body, bodyTooLarge: bodyTooLarge, settings: settings)
    }

    static func decide(method: HTTPMethod, headers: HTTPHeaders, body: ByteBuffer, bodyTooLarge: Bool, settings: Settings) -> Outcome {
        switch method {
        case .OPTIONS:
            return handshake(headers: headers, allowedOrigins: settings.allowedOrigins)
        case .POST:
            break
        default:
            return Outcome(status: 405, headers: [("Allow", "POST, OPTIONS")], reason: "only POST (events) and OPTIONS (the webhook handshake) are served", refused: true)
        }
        guard authorized(headers["authorization"], secret: settings.secret) else {
            return Outcome(status: 401, headers: [("WWW-Authenticate", "Bearer")], reason: "the delivery has no Authorization: Bearer header with the configured secret", refused: true)
        }
        let mediaType = headers["content-type"].first?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        let batch: Bool
        switch mediaType {
        case "application/cloudevents+json": batch = false
        case "application/cloudevents-batch+json": batch = true
        default:
            return Outcome(status: 415, reason: "the content type is not application/cloudevents+json or application/cloudevents-batch+json", refused: true)
        }
        guard !bodyTooLarge else {
            return Outcome(status: 413, reason: "the body is larger than the receiver accepts", refused: true)
        }
        guard let events = parse(body: Data(body.readableBytesView), batch: batch) else {
            return Outcome(status: 400, reason: "the body is not a CloudEvents 1.0 event (or a batch of them) with specversion, id, source and type", refused: true)
        }
        let wanted = settings.keyName.lowercased()
        let matched = events.filter { keyEventTypes.contains($0.type) && $0.subject?.lowercased() == wanted }
            .map { Outcome.Match(type: $0.type, id: $0.id, source: $0.source) }
        return Outcome(status: 200, reason: matched.isEmpty ? "no event for the configured key" : "a pass is asked for", matched: matched)
    }

    /// The CloudEvents webhook validation handshake (Event Grid's, for the CloudEvents schema).
    static func handshake(headers: HTTPHeaders, allowedOrigins: [String]) -> Outcome {
        guard let origin = headers["webhook-request-origin"].first, !origin.isEmpty, origin.utf8.count <= 253 else {
            return Outcome(status: 400, reason: "the handshake has no WebHook-Request-Origin header", refused: true)
        }
        let lower = origin.lowercased()
        guard allowedOrigins.contains("*") || allowedOrigins.contains(lower) else {
            return Outcome(status: 403, reason: "the handshake's origin is not in events.allowed-origins", refused: true)
        }
        var answer = [("WebHook-Allowed-Origin", origin), ("Allow", "POST, OPTIONS")]
        if !headers["webhook-request-rate"].isEmpty { answer.append(("WebHook-Allowed-Rate", "*")) }
        return Outcome(status: 200, headers: answer, reason: "handshake allowed")
    }

    /// `Bearer <secret>`, compared in constant time over the secret's length.
    static func authorized(_ values: [String], secret: SecretBytes) -> Bool {
        guard values.count == 1, values[0].count > 7, values[0].prefix(7).lowercased() == "bearer " else { return false }
        let given = Array(values[0].utf8.dropFirst(7))
        return secret.withUnsafeBytes { expected in
            var difference = UInt8(given.count == expected.count ? 0 : 1)
            for index in 0..<expected.count {
                difference |= expected[index] ^ (index < given.count ? given[index] : 0)
            }
            return difference == 0
        }
    }

    struct CloudEvent {
        var id: String
        var source: String
        var type: String
        var subject: String?
    }

    /// One event object, or a non-empty array of them (batch); nil when anything is off.
    static func parse(body: Data, batch: Bool) -> [CloudEvent]? {
        guard let json = try? JSONSerialization.jsonObject(with: body, options: []) else { return nil }
        let objects: [Any]
        if batch {
            guard let list = json as? [Any], !list.isEmpty, list.count <= 1_000 else { return nil }
            objects = list
        } else {
            objects = [json]
        }
        var events: [CloudEvent] = []
        for object in objects {
            guard let event = object as? [String: Any],
                  event["specversion"] as? String == "1.0",
                  let id = event["id"] as? String, !id.isEmpty,
                  let source = event["source"] as? String, !source.isEmpty,
                  let type = event["type"] as? String, !type.isEmpty
            else { return nil }
            if let subject = event["subject"], !(subject is String) { return nil }
            if let data = event["data"], !(data is [String: Any]) { return nil }
            events.append(CloudEvent(id: id, source: source, type: type, subject: event["subject"] as? String))
        }
        return events
    }

    // MARK: Serving

    func handle(_ outcome: Outcome, remote: SocketAddress?) {
        if !outcome.matched.isEmpty {
            logger.notice("A key event was accepted; a pass runs now.", metadata: [
                "message_id": "\(MessageID.keyEventAccepted)", "cmk_key_name": "\(settings.keyName)",
                "cmk_event_type": "\(outcome.matched.map(\.type).joined(separator: ","))",
                "cmk_event_id": "\(outcome.matched.map { String($0.id.prefix(64)) }.joined(separator: ","))",
                "cmk_event_source": "\(String(outcome.matched[0].source.prefix(200)))",
            ])
            onEvent()
        } else if outcome.refused {
            logger.warning("A key event delivery was refused.", metadata: [
                "message_id": "\(MessageID.keyEventRefused)", "cmk_status": "\(outcome.status)", "cmk_reason": "\(outcome.reason)",
                "cmk_remote": "\(remote.map { "\($0)" } ?? "unix socket")",
            ])
        }
    }
}
