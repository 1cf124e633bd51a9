import Foundation

/// One HTTP request as the provider builds it. Header values may carry a bearer token or a
/// client secret, so the type's description shows only the method and the path.
public struct AzureHTTPRequest: Sendable, CustomStringConvertible {
    public var method: String
    public var url: URL
    public var headers: [(name: String, value: String)]
    public var body: Data?

    public init(method: String, url: URL, headers: [(name: String, value: String)] = [], body: Data? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    /// The first value of a header (case-insensitive name).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    public var description: String {
        "\(method) \(URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedPath ?? url.path)"
    }
}

/// One HTTP response: status, headers and the whole body.
public struct AzureHTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: Data

    public init(status: Int, headers: [(name: String, value: String)] = [], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of a header (case-insensitive name).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// Why a request got no HTTP response at all.
public struct AzureTransportError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// No answer within the timeout (connect or response).
        case timeout
        /// The connection could not be made or broke (refused, reset, DNS).
        case connection
        /// The TLS handshake failed (untrusted certificate, wrong host name, protocol).
        case tls
        /// The response was larger than the provider accepts.
        case tooLarge
    }

    public var kind: Kind
    /// A value-free detail (never a header or a body).
    public var detail: String

    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { "\(kind.rawValue): \(detail)" }
}

/// The HTTP layer under the provider: the real one is ``AsyncHTTPClientTransport``; tests answer
/// from recordings or scripts. Implementations throw only ``AzureTransportError``.
public protocol AzureHTTPTransport: Sendable {
    func send(_ request: AzureHTTPRequest) async throws -> AzureHTTPResponse
}
