import CMKIdentity
import Hummingbird
import Logging
import NIOCore

/// What a request handler knows besides the request: the peer's address (for the security log
/// and the per-address throttle) and, once a bearer token was checked, who is calling.
public struct VaultRequestContext: RequestContext {
    /// How the listener creates a context for each request.
    public struct Source: RequestContextSource {
        public let logger: Logger
        /// The peer's IP address, as text; "unknown" for a Unix socket peer.
        public let remoteAddress: String
        public let maxUploadSize: Int
    }

    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: String
    public let maxUploadSize: Int
    /// Set by ``BearerAuthentication`` for routes that need a token.
    public var principal: Principal?

    public init(source: Source) {
        coreContext = .init(source: source)
        remoteAddress = source.remoteAddress
        maxUploadSize = source.maxUploadSize
    }
}

extension SocketAddress {
    /// The address without the port, or "unknown".
    var hostText: String { ipAddress ?? "unknown" }
}
