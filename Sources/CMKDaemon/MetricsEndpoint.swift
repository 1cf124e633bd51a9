import CMKConfiguration
import CMKEnvelope
import CMKMetrics
import CMKSyncer
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// `GET /metrics` on `metrics.listen` (docs/metrics.md): the Prometheus text exposition (0.0.4)
/// of ``DaemonMetrics``, built by swift-prometheus. Anything else is 404 (another path), 405
/// (another method) or 413 (a body); heads are limited to 8 KiB. A scrape reads a few counters and
/// /proc/self on an event loop: it never waits for, or holds up, a pass.
final class MetricsEndpoint: Sendable {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    /// The socket's mode on `unix:` (docs/metrics.md): the daemon's user and group may connect.
    static let socketMode: mode_t = 0o660

    private let http: LocalHTTPListener
    private let logger: Logger

    /// - Parameter sources: the DEK cache and probe status to read at each scrape (the running graph's).
    init(listen: SyncerConfiguration.Metrics.Listen, metrics: DaemonMetrics, logger: Logger,
         sources: @escaping @Sendable () -> (cache: DEKCache?, probe: ProbeStatus?)) {
        self.logger = logger
        http = LocalHTTPListener(listen: listen, limits: .init(maxHeaderBytes: 8 * 1024, maxBodyBytes: 0), socketMode: Self.socketMode,
                                 headTooLarge: Self.text(431, "the request head is larger than 8 KiB\n")) { request in
            Self.answer(request.head, bodyTooLarge: request.bodyTooLarge) {
                let (cache, probe) = sources()
                return metrics.exposition(cache: cache, probe: probe)
            }
        }
    }

    /// The answer to a request; `exposition` is called only for `GET /metrics`.
    static func answer(_ head: HTTPRequestHead, bodyTooLarge: Bool, exposition: () -> [UInt8]) -> LocalHTTPListener.Response {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? head.uri
        guard path == "/metrics" else { return text(404, "not found: the metrics are at /metrics\n") }
        guard head.method == .GET || head.method == .HEAD else {
            var refusal = text(405, "only GET is served\n")
            refusal.headers = [("Allow", "GET, HEAD")]
            return refusal
        }
        guard !bodyTooLarge else { return text(413, "a scrape has no body\n") }
        let body = exposition()
        return LocalHTTPListener.Response(status: 200, contentType: contentType, body: head.method == .HEAD ? [] : body)
    }

    static func text(_ status: Int, _ message: String) -> LocalHTTPListener.Response {
        LocalHTTPListener.Response(status: status, contentType: "text/plain; charset=utf-8", body: Array(message.utf8))
    }

    /// Binds the socket; returns the bound address.
    @discardableResult
    func start() async throws -> SocketAddress? {
        let address = try await http.start()
        logger.info("The metrics endpoint is listening.", metadata: ["cmk_metrics_listen": "\(http.listen)"])
        return address
    }

    func close() async { await http.close() }
}
