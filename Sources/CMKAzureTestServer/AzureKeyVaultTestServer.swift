import CMKCore
import CMKKeyVaultAPI
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An Azure Key Vault emulator for tests: the keys REST API with challenge authentication, the
/// Microsoft identity platform's token endpoint and discovery documents, and (optionally) IMDS,
/// served on 127.0.0.1 with ephemeral ports over TLS from a test certificate authority. Keys are
/// real RSA key pairs in memory. Faults and a rate limit can be injected, and every request is
/// logged (without headers or bodies). See `docs/testing/azure-test-server.md`.
///
/// ```swift
/// let ca = try TestCertificateAuthority.make()
/// let server = try await AzureKeyVaultTestServer.start(.init(clientSecret: "s3cret", clock: clock), tls: ca.server)
/// defer { ... try await server.shutdown(); ca.remove() }
/// // vault: server.vaultURL; token endpoint: server.tokenEndpoint; trust: ca.caCertificatePath
/// ```
public final class AzureKeyVaultTestServer: Sendable {
    /// `https://127.0.0.1:PORT`: the vault URL (key ids start with it).
    public let vaultURL: String
    /// `https://127.0.0.1:PORT`: the authority host (the same listener serves the identity platform).
    public let authorityHost: String
    /// `http://127.0.0.1:PORT` of the IMDS listener, when a managed identity is configured.
    public let imdsEndpoint: String?
    /// The configuration the server runs with.
    public let configuration: Configuration

    private let group: MultiThreadedEventLoopGroup
    private let threadPool: NIOThreadPool
    private let channels: [any Channel]
    let dispatcher: Dispatcher

    private init(
        configuration: Configuration, group: MultiThreadedEventLoopGroup, threadPool: NIOThreadPool, channels: [any Channel],
        dispatcher: Dispatcher, baseURL: String, imdsEndpoint: String?
    ) {
        self.configuration = configuration
        self.group = group
        self.threadPool = threadPool
        self.channels = channels
        self.dispatcher = dispatcher
        self.vaultURL = baseURL
        self.authorityHost = baseURL
        self.imdsEndpoint = imdsEndpoint
    }

    /// Starts the server; call `shutdown()` when done.
    public static func start(_ configuration: Configuration, tls: TestCertificateAuthority.ServerFiles) async throws -> AzureKeyVaultTestServer {
        try configuration.validate()
        let sslContext: NIOSSLContext
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(tls.certificatePath).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: tls.privateKeyPath, format: .pem)
            sslContext = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
        } catch {
            throw TestServerError("the server certificate or key at \(tls.certificatePath) cannot be loaded: \(error)")
        }
        let address = ServerAddress()
        let vault = KeyVaultAPI(
            configuration: .init(retentionDays: configuration.retentionDays, purgeProtection: configuration.purgeProtection, clock: configuration.clock,
                                 vaultName: "emulated-vault"),
            store: configuration.keyStore ?? InMemoryKeyRecordStore(), vaultURL: { address.url })
        let identity = TokenService(configuration: configuration, address: address)
        let dispatcher = Dispatcher(vault: vault, identity: identity, traffic: TrafficControl(rateLimit: configuration.rateLimit))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        var channels: [any Channel] = []
        do {
            let tlsChannel = try await bootstrap(group: group, threadPool: threadPool, dispatcher: dispatcher, listener: .tls, ssl: sslContext)
            channels.append(tlsChannel)
            let port = tlsChannel.localAddress?.port ?? 0
            let baseURL = "https://127.0.0.1:\(port)"
            address.url = baseURL
            var imdsEndpoint: String?
            if configuration.managedIdentityClientID != nil {
                let imds = try await bootstrap(group: group, threadPool: threadPool, dispatcher: dispatcher, listener: .imds, ssl: nil)
                channels.append(imds)
                imdsEndpoint = "http://127.0.0.1:\(imds.localAddress?.port ?? 0)"
            }
            return AzureKeyVaultTestServer(
                configuration: configuration, group: group, threadPool: threadPool, channels: channels, dispatcher: dispatcher,
                baseURL: baseURL, imdsEndpoint: imdsEndpoint)
        } catch {
            for channel in channels { try? await channel.close() }
            try? await threadPool.shutdownGracefully()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private static func bootstrap(
        group: MultiThreadedEventLoopGroup, threadPool: NIOThreadPool, dispatcher: Dispatcher, listener: Dispatcher.Listener, ssl: NIOSSLContext?
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let ssl { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: ssl)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectionHandler(dispatcher: dispatcher, listener: listener, threadPool: threadPool))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    /// Stops listening and releases the threads.
    public func shutdown() async throws {
        for channel in channels { try? await channel.close() }
        try await threadPool.shutdownGracefully()
        try await group.shutdownGracefully()
    }

    // MARK: - Endpoints

    /// The v2.0 token endpoint of the configured tenant.
    public var tokenEndpoint: String { "\(authorityHost)/\(configuration.tenantID)/oauth2/v2.0/token" }

    // MARK: - Faults, rate limit, request log

    /// Makes the next `times` requests matching `matcher` fail with `fault` (queued faults apply in order).
    public func inject(_ fault: Fault, times: Int = 1, matching matcher: RequestMatcher = .vault) {
        dispatcher.traffic.inject(fault, times: times, matching: matcher)
    }

    /// Drops every queued fault.
    public func clearFaults() { dispatcher.traffic.clearFaults() }

    /// Every request answered so far, oldest first.
    public var requests: [RecordedRequest] { dispatcher.traffic.log }

    /// Empties the request log (e.g. between sync passes).
    public func clearRequests() { dispatcher.traffic.clearLog() }

    /// Forgets every issued token, so the next vault call gets 401 and the client must re-authenticate.
    public func revokeTokens() { dispatcher.identity.revokeAll() }
}

extension AzureKeyVaultTestServer {
    /// Starts a server, runs `body`, and shuts the server down however `body` ends. Without a
    /// certificate authority, a fresh one is made for the server and removed afterwards.
    public static func withServer<T>(
        _ configuration: Configuration, certificateAuthority: TestCertificateAuthority? = nil,
        _ body: (AzureKeyVaultTestServer, TestCertificateAuthority) async throws -> T
    ) async throws -> T {
        let ca = try certificateAuthority ?? TestCertificateAuthority.make()
        defer { if certificateAuthority == nil { ca.remove() } }
        let server = try await start(configuration, tls: ca.server)
        do {
            let result = try await body(server, ca)
            try await server.shutdown()
            return result
        } catch {
            try? await server.shutdown()
            throw error
        }
    }
}
