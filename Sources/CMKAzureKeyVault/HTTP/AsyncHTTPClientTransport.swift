import AsyncHTTPClient
import CMKCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// The production transport: async-http-client over TLS 1.2+, with the system's trust roots plus
/// an optional extra CA (``AzureKeyVaultConfiguration/caFile``), no redirects, bounded bodies.
///
/// ``withTransport(caFile:timeout:_:)`` owns a client for a scope and shuts it down afterwards;
/// ``shared(caFile:timeout:)`` hands out a process-lifetime client per trust root (like
/// `HTTPClient.shared`, never shut down), for the daemon whose vault lives as long as the process.
public final class AsyncHTTPClientTransport: AzureHTTPTransport {
    /// The largest response body accepted (a versions page of 25 items is a few KiB).
    public static let maximumBodySize = 4 << 20

    private let client: HTTPClient
    private let timeout: Duration

    private static let sharedClients = Mutex<[String: HTTPClient]>([:])

    private init(client: HTTPClient, timeout: Duration) {
        self.client = client
        self.timeout = timeout
    }

    /// A transport over the process-wide client for this trust root. Throws ``AzureTransportError``
    /// (`.tls`) when the CA file cannot be loaded.
    public static func shared(caFile: String?, timeout: Duration) throws -> AsyncHTTPClientTransport {
        let configuration = try clientConfiguration(caFile: caFile, timeout: timeout)
        let key = "\(caFile ?? "")|\(timeout)"
        let client = sharedClients.withLock { clients in
            if let client = clients[key] { return client }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[key] = client
            return client
        }
        return AsyncHTTPClientTransport(client: client, timeout: timeout)
    }

    /// Runs `body` with a transport of its own and shuts it down afterwards, whatever happens.
    public static func withTransport<R: Sendable>(caFile: String?, timeout: Duration,
                                                  _ body: (AsyncHTTPClientTransport) async throws -> R) async throws -> R {
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: try clientConfiguration(caFile: caFile, timeout: timeout))
        let transport = AsyncHTTPClientTransport(client: client, timeout: timeout)
        do {
            let result = try await body(transport)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// TLS 1.2+, the extra trust root, no redirects, no reconnecting inside a request; a connect
    /// timeout of at most 10 s and a read
    /// timeout of `timeout`, so a server that stalls inside a body cannot hold a pass (the request
    /// deadline covers only the response head).
    static func clientConfiguration(caFile: String?, timeout: Duration) throws -> HTTPClient.Configuration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let caFile {
            do {
                tls.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(caFile))]
            } catch {
                throw AzureTransportError(.tls, "the CA file \(caFile) is not a readable PEM certificate file")
            }
        }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(min(10, max(1, timeout.components.seconds))),
                           read: .seconds(max(1, timeout.components.seconds))))
        configuration.httpVersion = .automatic
        // A refused or reset connection fails the request at once: the provider's attempts and the
        // pass's `sync.retry` back off and retry it. With the client's own retries on, each request
        // kept reconnecting until the connect timeout, so a pass against a stopped vault took
        // attempts × 10 s per call (62 s) before it said "vault unreachable".
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }

    /// One exchange, bounded by the timeout: it beats the pass's ``Heartbeat`` when it starts and
    /// when it ends, so a slow vault keeps the watchdog fed while a hung one (no answer, no
    /// timeout) does not.
    public func send(_ request: AzureHTTPRequest) async throws -> AzureHTTPResponse {
        Heartbeat.beat()
        defer { Heartbeat.beat() }
        var outgoing = HTTPClientRequest(url: request.url.absoluteString)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        if let body = request.body {
            outgoing.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await client.execute(outgoing, timeout: .nanoseconds(Int64(timeout.timeInterval * 1e9)))
            let body = try await response.body.collect(upTo: Self.maximumBodySize)
            return AzureHTTPResponse(status: Int(response.status.code),
                                     headers: response.headers.map { ($0.name, $0.value) },
                                     body: Data(byteBuffer: body))
        } catch let error as AzureTransportError {
            throw error
        } catch {
            throw Self.classify(error, host: request.url.host ?? "?")
        }
    }

    static func classify(_ error: any Error, host: String) -> AzureTransportError {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout, .readTimeout, .deadlineExceeded, .writeTimeout, .tlsHandshakeTimeout, .getConnectionFromPoolTimeout:
                return AzureTransportError(.timeout, "no answer from \(host) within the timeout")
            case .remoteConnectionClosed:
                return AzureTransportError(.connection, "\(host) closed the connection")
            default:
                return AzureTransportError(.connection, "request to \(host) failed: \(error)")
            }
        }
        if error is NIOTooManyBytesError {
            return AzureTransportError(.tooLarge, "the response from \(host) exceeds \(maximumBodySize) bytes")
        }
        if error is NIOSSLError || error is BoringSSLError || String(describing: type(of: error)).contains("SSL") {
            return AzureTransportError(.tls, "TLS handshake with \(host) failed (untrusted certificate or wrong host name? see vault.azure.ca-file): \(error)")
        }
        return AzureTransportError(.connection, "cannot reach \(host): \(error)")
    }
}

extension Data {
    init(byteBuffer buffer: ByteBuffer) {
        self = buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes).map { Data($0) } ?? Data()
    }
}
