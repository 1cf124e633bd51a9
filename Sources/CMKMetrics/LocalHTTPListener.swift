import CMKConfiguration
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A small HTTP/1.1 listener on loopback or a unix socket (SwiftNIO, no server framework), shared
/// by the daemon's key event receiver (`events.listen`) and the metrics endpoints of the daemon and
/// of cmk-vault (`metrics.listen`; in CMKMetrics so that cmk-vault need not link CMKDaemon): it
/// collects one request at a time per connection within a head and a body limit and hands it to a
/// responder that must not block (it runs on an event loop).
package final class LocalHTTPListener: Sendable {
    /// One request as the responder sees it.
    package struct Request {
        package var head: HTTPRequestHead
        package var body: ByteBuffer
        /// The body went past the limit and was dropped.
        package var bodyTooLarge: Bool
        package var remote: SocketAddress?
    }

    /// One answer.
    package struct Response {
        package var status: Int
        package var headers: [(String, String)] = []
        package var contentType: String
        package var body: [UInt8]

        package init(status: Int, headers: [(String, String)] = [], contentType: String, body: [UInt8]) {
            self.status = status
            self.headers = headers
            self.contentType = contentType
            self.body = body
        }
    }

    package struct Limits: Sendable {
        package var maxHeaderBytes: Int
        package var maxBodyBytes: Int

        package init(maxHeaderBytes: Int, maxBodyBytes: Int) {
            self.maxHeaderBytes = maxHeaderBytes
            self.maxBodyBytes = maxBodyBytes
        }
    }

    /// The answer to a head larger than the limit, from the responder's owner.
    package typealias Responder = @Sendable (Request) -> Response

    package let listen: SyncerConfiguration.Events.Listen
    private let limits: Limits
    /// The permissions of a unix socket (the umask while binding clears the others).
    private let socketMode: mode_t
    private let respond: Responder
    private let headTooLarge: Response
    private let group: any EventLoopGroup
    private let channel = Mutex<(any Channel)?>(nil)

    package init(listen: SyncerConfiguration.Events.Listen, limits: Limits, socketMode: mode_t, headTooLarge: Response,
         group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, respond: @escaping Responder) {
        self.listen = listen
        self.limits = limits
        self.socketMode = socketMode
        self.headTooLarge = headTooLarge
        self.group = group
        self.respond = respond
    }

    /// Binds the listening socket; returns the bound address (a TCP port of 0 picks a free one).
    @discardableResult
    package func start() async throws -> SocketAddress? {
        let listener = self
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(listener: listener))
                }
            }
        let bound: any Channel
        switch listen {
        case .tcp(let host, let port):
            bound = try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path):
            // A stale socket of an earlier run is replaced; anything else at the path is refused by bind.
            var info = stat()
            if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK { unlink(path) }
            let previous = umask(0o777 & ~socketMode)
            defer { umask(previous) }
            bound = try await bootstrap.bind(unixDomainSocketPath: path).get()
        }
        channel.withLock { $0 = bound }
        return bound.localAddress
    }

    /// Closes the listening socket (connections in flight finish).
    package func close() async {
        guard let bound = channel.withLock({ value -> (any Channel)? in defer { value = nil }; return value }) else { return }
        try? await bound.close()
        if case .unix(let path) = listen { unlink(path) }
    }

    /// One connection: collects a request (head within the header limit, body within the body
    /// limit), answers it and keeps the connection when the client asked to.
    final class RequestHandler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let listener: LocalHTTPListener
        var head: HTTPRequestHead?
        var body = ByteBuffer()
        var tooLarge = false

        init(listener: LocalHTTPListener) { self.listener = listener }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let request):
                head = request
                body.clear()
                tooLarge = false
                let size = request.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 } + request.uri.utf8.count
                if size > listener.limits.maxHeaderBytes {
                    write(context: context, listener.headTooLarge, keepAlive: false)
                    head = nil
                }
            case .body(var part):
                guard head != nil, !tooLarge else { return }
                if body.readableBytes + part.readableBytes > listener.limits.maxBodyBytes {
                    tooLarge = true
                    body.clear()
                } else {
                    body.writeBuffer(&part)
                }
            case .end:
                guard let request = head else { return }
                head = nil
                let response = listener.respond(Request(head: request, body: body, bodyTooLarge: tooLarge, remote: context.channel.remoteAddress))
                write(context: context, response, keepAlive: request.isKeepAlive && !tooLarge)
                body.clear()
            }
        }

        func write(context: ChannelHandlerContext, _ response: Response, keepAlive: Bool) {
            var headers = HTTPHeaders()
            for (name, value) in response.headers { headers.add(name: name, value: value) }
            headers.add(name: "Content-Type", value: response.contentType)
            headers.add(name: "Content-Length", value: "\(response.body.count)")
            headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
            let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
            let done = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
            if !keepAlive {
                let channel = context.channel
                done.futureResult.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}
