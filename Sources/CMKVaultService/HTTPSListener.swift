import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL

/// The HTTPS server of `cmk-vault`: TLS 1.2+ on a socket that systemd passed (`cmk-vault.socket`,
/// `sd_listen_fds(3)`) or that the service binds itself, HTTP/1.1 through Hummingbird's channel
/// handlers, a router as responder. Hummingbird's own `Application` cannot take an inherited
/// socket, hence this small loop (the same shape as Hummingbird's `Server`).
public struct HTTPSListener: Sendable {
    public enum Endpoint: Sendable, Hashable {
        /// A listening socket already bound (systemd's, fd 3 upward).
        case inherited(Int32)
        case address(host: String, port: Int)
    }

    public let endpoint: Endpoint
    public let tls: TLSConfiguration
    public let maxBodyBytes: Int
    public let maxHeaderBytes: Int
    public let logger: Logger

    public init(endpoint: Endpoint, tls: TLSConfiguration, maxBodyBytes: Int, maxHeaderBytes: Int, logger: Logger) {
        self.endpoint = endpoint
        self.tls = tls
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.logger = logger
    }

    /// Serves `router` until the task is cancelled, then stops accepting and lets requests in
    /// flight finish (at most `drain`). `onListening` receives the bound address once accepting.
    public func run(router: Router<VaultRequestContext>, drain: Duration = .seconds(10),
                    onListening: @Sendable (SocketAddress?) async -> Void) async throws {
        let responder = router.buildResponder()
        let logger = self.logger, maxBody = maxBodyBytes
        let http = HTTP1Channel(
            responder: { request, writer, channel in
                var requestLogger = logger
                requestLogger[metadataKey: "hb.request.id"] = .string(UUID().uuidString.lowercased())
                let context = VaultRequestContext(source: .init(logger: requestLogger, remoteAddress: channel.remoteAddress?.hostText ?? "unknown",
                                                                maxUploadSize: maxBody))
                var response: Response
                do {
                    response = try await responder.respond(to: request, context: context)
                } catch {
                    requestLogger.error("A request failed without an answer.", metadata: ["error.type": .string(String(describing: type(of: error)))])
                    response = Response(status: .internalServerError)
                }
                response.headers[.strictTransportSecurity] = "max-age=31536000"
                response.headers[.xContentTypeOptions] = "nosniff"
                try await writer.write(response: response.head, body: response.body)
            },
            configuration: .init(idleTimeout: .seconds(60),
                                 httpDecoderConfiguration: .init(maxHeaderFieldSize: maxHeaderBytes, maxHeaderListSize: maxHeaderBytes, maxHeaderFieldCount: 100)))
        let child = try TLSChannel(http, tlsConfiguration: tls)
        let group = MultiThreadedEventLoopGroup.singleton
        let quiescing = ServerQuiescingHelper(group: group)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
        let server: NIOAsyncChannel<TLSChannel<HTTP1Channel>.Value, Never>
        switch endpoint {
        case .inherited(let fd):
            server = try await bootstrap.bind(fd) { channel in child.setup(channel: channel, logger: logger) }
        case .address(let host, let port):
            server = try await bootstrap.bind(host: host, port: port) { channel in child.setup(channel: channel, logger: logger) }
        }
        await onListening(server.channel.localAddress)
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                do {
                    try await server.executeThenClose { inbound in
                        for try await connection in inbound {
                            group.addTask { await child.handle(value: connection, logger: logger) }
                        }
                    }
                } catch is CancellationError {
                    // A stop (SIGTERM): the accept loop ends here; not a failure.
                } catch {
                    logger.error("The listening socket failed.", metadata: ["error": .string(String(describing: error))])
                }
            }
        } onCancel: {
            let promise = group.next().makePromise(of: Void.self)
            quiescing.initiateShutdown(promise: promise)
            _ = group.next().scheduleTask(in: .nanoseconds(Int64(drain.components.seconds) * 1_000_000_000)) {
                server.channel.close(promise: nil)
            }
        }
    }

    /// The TLS configuration for a PEM certificate chain and key: TLS 1.2 or 1.3 at least,
    /// the protocol's modern cipher suites only (NIO-SSL's defaults), HTTP/1.1 by ALPN.
    public static func tlsConfiguration(certificateChainPEM: [UInt8], privateKeyPEM: [UInt8], minimumVersion: String) throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMBytes(certificateChainPEM).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(bytes: privateKeyPEM, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = minimumVersion == "1.3" ? .tlsv13 : .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        return configuration
    }
}
