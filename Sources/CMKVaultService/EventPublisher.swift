import AsyncHTTPClient
import CMKConfiguration
import CMKCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// Pushes ``KeyEvent``s to the subscribed webhooks (`events.subscriptions` in cmk-vault.yaml;
/// docs/vault-service.md, "Events") as CloudEvents 1.0 in the shape of Azure Event Grid's Key
/// Vault events, so a host daemon's receiver works the same behind cmk-vault and behind Event Grid.
///
/// Per subscription: the CloudEvents webhook validation handshake before the first delivery (and
/// again after a failure), a bounded queue (``queueCapacity``; the oldest events are kept, newer
/// ones dropped with a journal line when it is full), and a delivery task that retries with
/// exponential backoff (0.5 s doubling to 30 s, ``maxAttempts`` tries) and then drops the event.
/// ``publish(_:)`` never blocks and never fails a request: a lost event only costs the host
/// latency, because every daemon still polls.
///
/// Outbound HTTP is AsyncHTTPClient (already built for the daemon's Azure provider, so cmk-vault
/// only links it): TLS with the system's roots or the subscription's `ca-file`, timeouts,
/// no redirects, connection reuse.
public final class EventPublisher: KeyEventSink, Sendable {
    public static let queueCapacity = 1_000
    public static let maxAttempts = 8
    public static let requestTimeout: TimeAmount = .seconds(10)

    struct Subscriber: Sendable {
        let settings: VaultServiceConfiguration.Events.Subscription
        let secret: SecretBytes
        let client: HTTPClient
        let queue: AsyncStream<KeyEvent>.Continuation
        let stream: AsyncStream<KeyEvent>
    }

    /// Why the publisher cannot be made (a secret or CA file); names the subscription and the fix.
    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    private let subscribers: [Subscriber]
    /// The vault as the events' `source` (its public URL), its host as the handshake's origin.
    private let source: String
    private let origin: String
    private let vaultName: String
    private let logger: Logger
    private let tasks = Mutex<[Task<Void, Never>]>([])
    /// For tests: how long to wait before retry `attempt` (1-based).
    let backoff: @Sendable (Int) -> Duration

    public init(events: VaultServiceConfiguration.Events, publicURL: String, environment: [String: String], logger: Logger,
                backoff: @escaping @Sendable (Int) -> Duration = EventPublisher.defaultBackoff) throws(SetupError) {
        self.source = publicURL
        let host = URLComponents(string: publicURL)?.host ?? "cmk-vault"
        self.origin = host
        self.vaultName = host
        self.logger = logger
        self.backoff = backoff
        var subscribers: [Subscriber] = []
        for settings in events.subscriptions {
            let secret: SecretBytes
            do {
                secret = try settings.secret.read(environment: environment, what: "events.subscriptions[\(settings.name)].secret")
            } catch {
                throw SetupError(description: error.description)
            }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            if let caFile = settings.caFile {
                do {
                    tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
                } catch {
                    for made in subscribers { try? made.client.syncShutdown() }
                    throw SetupError(description: "events.subscriptions[\(settings.name)].ca-file: \(caFile) is not a readable PEM certificate file")
                }
            }
            let configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                                         timeout: .init(connect: .seconds(5), read: Self.requestTimeout))
            let (stream, queue) = AsyncStream.makeStream(of: KeyEvent.self, bufferingPolicy: .bufferingOldest(Self.queueCapacity))
            subscribers.append(Subscriber(settings: settings, secret: secret, client: HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration),
                                          queue: queue, stream: stream))
        }
        self.subscribers = subscribers
    }

    /// 0.5 s, 1 s, 2 s … at most 30 s.
    public static let defaultBackoff: @Sendable (Int) -> Duration = { attempt in
        min(.milliseconds(500) * (1 << min(attempt - 1, 10)), .seconds(30))
    }

    /// Starts one delivery task per subscription.
    public func start() {
        let started = subscribers.map { subscriber in Task { await self.deliver(subscriber) } }
        tasks.withLock { $0 += started }
    }

    /// Stops the delivery tasks (events still queued are dropped) and closes the HTTP clients.
    public func shutdown() async {
        for subscriber in subscribers { subscriber.queue.finish() }
        let running = tasks.withLock { tasks in defer { tasks = [] }; return tasks }
        for task in running { task.cancel() }
        for task in running { await task.value }
        for subscriber in subscribers { try? await subscriber.client.shutdown() }
    }

    public func publish(_ event: KeyEvent) {
        for subscriber in subscribers where subscriber.settings.types.contains(event.kind.rawValue) {
            if case .dropped = subscriber.queue.yield(event) {
                logger.warning("A key event was dropped: the subscription's queue is full.", metadata: [
                    "message_id": .string(VaultMessageID.eventDeliveryFailed), "cmk_subscription": .string(subscriber.settings.name),
                    "cmk_event_type": .string(event.kind.rawValue), "cmk_key": .string(event.keyName),
                ])
            }
        }
    }

    // MARK: Delivery

    struct DeliveryFailure: Error, CustomStringConvertible {
        let description: String
    }

    private func deliver(_ subscriber: Subscriber) async {
        var validated = false
        for await event in subscriber.stream {
            var attempt = 1
            while !Task.isCancelled {
                do {
                    if !validated {
                        try await handshake(subscriber)
                        validated = true
                    }
                    try await post(event, to: subscriber)
                    break
                } catch {
                    validated = false
                    let last = attempt >= Self.maxAttempts
                    logger.log(level: last ? .error : .warning,
                               last ? "A key event could not be delivered; it is dropped (the host notices the change at its next poll)."
                                    : "A key event could not be delivered; retrying.", metadata: [
                        "message_id": .string(VaultMessageID.eventDeliveryFailed), "cmk_subscription": .string(subscriber.settings.name),
                        "cmk_endpoint": .string(subscriber.settings.endpoint), "cmk_event_type": .string(event.kind.rawValue),
                        "cmk_key": .string(event.keyName), "cmk_attempt": .stringConvertible(attempt), "cmk_error": .string("\(error)"),
                    ])
                    if last { break }
                    try? await Task.sleep(for: backoff(attempt))
                    attempt += 1
                }
            }
        }
    }

    /// The CloudEvents webhook validation handshake: `OPTIONS` with `WebHook-Request-Origin`; the
    /// receiver must answer 200 with `WebHook-Allowed-Origin` naming this origin (or `*`). No
    /// secret is sent before it.
    func handshake(_ subscriber: Subscriber) async throws {
        var request = HTTPClientRequest(url: subscriber.settings.endpoint)
        request.method = .OPTIONS
        request.headers.add(name: "WebHook-Request-Origin", value: origin)
        request.headers.add(name: "WebHook-Request-Rate", value: "120")
        let response = try await subscriber.client.execute(request, timeout: Self.requestTimeout)
        _ = try? await response.body.collect(upTo: 64 * 1024)
        let allowed = response.headers["WebHook-Allowed-Origin"].first
        guard response.status == .ok, allowed == "*" || allowed?.lowercased() == origin.lowercased() else {
            throw DeliveryFailure(description: "the webhook handshake was refused (HTTP \(response.status.code), WebHook-Allowed-Origin \(allowed.map { "'\($0.prefix(100))'" } ?? "missing"))")
        }
    }

    func post(_ event: KeyEvent, to subscriber: Subscriber) async throws {
        var request = HTTPClientRequest(url: subscriber.settings.endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/cloudevents+json; charset=utf-8")
        request.headers.add(name: "Authorization", value: subscriber.secret.withUnsafeBytes { "Bearer " + String(decoding: $0, as: UTF8.self) })
        request.body = .bytes(ByteBuffer(data: try cloudEvent(event)))
        let response = try await subscriber.client.execute(request, timeout: Self.requestTimeout)
        _ = try? await response.body.collect(upTo: 64 * 1024)
        guard (200..<300).contains(response.status.code) else {
            throw DeliveryFailure(description: "the receiver answered HTTP \(response.status.code)")
        }
    }

    /// Structured-mode CloudEvents 1.0 with Event Grid's Key Vault `data`.
    func cloudEvent(_ event: KeyEvent) throws -> Data {
        let id = event.version.map { "\(source)/keys/\(event.keyName)/\($0)" } ?? "\(source)/keys/\(event.keyName)"
        let data: [String: Any] = [
            "Id": id, "VaultName": vaultName, "ObjectType": "Key", "ObjectName": event.keyName,
            "Version": event.version ?? "", "NBF": event.notBefore.map { $0 as Any } ?? NSNull(), "EXP": event.expires.map { $0 as Any } ?? NSNull(),
        ]
        let object: [String: Any] = [
            "specversion": "1.0", "type": event.kind.rawValue, "source": source, "id": UUID().uuidString.lowercased(),
            // RFC 3339 with its zone, as CloudEvents requires.
            "time": Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(event.time),
            "subject": event.keyName, "datacontenttype": "application/json", "data": data,
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }
}

extension KeyEvent {
    /// The event a successful keys API request raises: a new version (create, rotate), a delete,
    /// a recovery, a purge; nil for anything else. The name, version, nbf and exp come from the
    /// answer's bundle when it has one (the vault's spelling of the name), else from the path.
    init?(operation: String, segments: [String], responseBody: Data, time: Date = Date()) {
        let kind: Kind
        switch operation {
        case "key-created", "key-rotated": kind = .newVersionCreated
        case "key-deleted": kind = .deleted
        case "key-recovered": kind = .recovered
        case "key-purged": kind = .purged
        default: return nil
        }
        guard segments.count >= 2 else { return nil }
        var name = segments[1]
        var version: String?
        var notBefore: Int?, expires: Int?
        if let bundle = (try? JSONSerialization.jsonObject(with: responseBody)) as? [String: Any] {
            if let kid = (bundle["key"] as? [String: Any])?["kid"] as? String, let url = URL(string: kid) {
                let parts = url.path.split(separator: "/").map(String.init)
                if parts.count >= 3, parts[0] == "keys" {
                    name = parts[1]
                    if kind == .newVersionCreated { version = parts[2] }
                }
            }
            if kind == .newVersionCreated, let attributes = bundle["attributes"] as? [String: Any] {
                notBefore = (attributes["nbf"] as? NSNumber)?.intValue
                expires = (attributes["exp"] as? NSNumber)?.intValue
            }
        }
        self.init(kind: kind, keyName: name, version: version, notBefore: notBefore, expires: expires, time: time)
    }
}
