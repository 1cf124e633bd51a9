import CMKKeyVaultAPI
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Collects one HTTP/1.1 request at a time, answers it through the dispatcher on a thread pool
/// (RSA key generation must not block the event loop), and writes the answer back, after a
/// delay or not at all when a fault says so.
final class ConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Larger request bodies are refused with 413 (the keys API never needs more).
    static let maxBodySize = 1 << 20

    private let dispatcher: Dispatcher
    private let listener: Dispatcher.Listener
    private let threadPool: NIOThreadPool
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false

    init(dispatcher: Dispatcher, listener: Dispatcher.Listener, threadPool: NIOThreadPool) {
        self.dispatcher = dispatcher
        self.listener = listener
        self.threadPool = threadPool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
            tooLarge = false
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > Self.maxBodySize { tooLarge = true } else { body.writeBuffer(&chunk) }
        case .end:
            guard let head else { return }
            self.head = nil
            let keepAlive = head.isKeepAlive
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            if tooLarge {
                write(ServerResponse(status: 413), keepAlive: false, context: context)
                return
            }
            let request = ServerRequest(
                method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) },
                body: Data(body.readableBytesView))
            let dispatcher = dispatcher, listener = listener
            threadPool.runIfActive(eventLoop: context.eventLoop) {
                dispatcher.respond(to: request, on: listener)
            }.whenComplete { result in
                let context = loopBound.value
                switch result {
                case .success(.respond(let response, let delay)):
                    if let delay {
                        context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay.components.seconds) * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000)) {
                            Self.write(response, keepAlive: keepAlive, context: loopBound.value)
                        }
                    } else {
                        Self.write(response, keepAlive: keepAlive, context: context)
                    }
                case .success(.close), .failure:
                    context.close(promise: nil)
                }
            }
        }
    }

    private func write(_ response: ServerResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        Self.write(response, keepAlive: keepAlive, context: context)
    }

    private static func write(_ response: ServerResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders(response.headers.map { ($0.name, $0.value) })
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
        headers.replaceOrAdd(name: "Date", value: httpDate())
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        if !response.body.isEmpty {
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        }
        let done = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    private static func httpDate() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: Date())
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
