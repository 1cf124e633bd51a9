import CMKConfiguration
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// `GET /metrics` on `metrics.listen` (docs/metrics.md), for the daemon and for cmk-vault: the
/// Prometheus text exposition (0.0.4) that swift-prometheus builds. Anything else is 404 (another
/// path), 405 (another method) or 413 (a body); heads are limited to 8 KiB. Plain HTTP on loopback
/// or a unix socket only (the configuration refuses other addresses). A scrape runs `exposition` on
/// an event loop: it reads counters and /proc/self, never waits for a pass or a request.
package final class MetricsEndpoint: Sendable {
    package static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    /// The socket's mode on `unix:` (docs/metrics.md): the service's user and group may connect.
    package static let socketMode: mode_t = 0o660

    private let http: LocalHTTPListener
    private let logger: Logger

    /// - Parameter exposition: the text exposition of every metric, brought up to date (called per scrape).
    package init(listen: SyncerConfiguration.Metrics.Listen, logger: Logger, exposition: @escaping @Sendable () -> [UInt8]) {
        self.logger = logger
        http = LocalHTTPListener(listen: listen, limits: .init(maxHeaderBytes: 8 * 1024, maxBodyBytes: 0), socketMode: Self.socketMode,
                                 headTooLarge: Self.text(431, "the request head is larger than 8 KiB\n")) { request in
            Self.answer(request.head, bodyTooLarge: request.bodyTooLarge, exposition: exposition)
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
    package func start() async throws -> SocketAddress? {
        let address = try await http.start()
        logger.info("The metrics endpoint is listening.", metadata: ["cmk_metrics_listen": "\(http.listen)"])
        return address
    }

    package func close() async { await http.close() }
}
