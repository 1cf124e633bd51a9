import Foundation

/// A failure the server injects into matching requests instead of (or before) its normal answer.
public enum Fault: Sendable, Equatable {
    /// 429 `Throttled`, with `Retry-After: seconds` or without the header.
    case throttled(retryAfter: Int?)
    /// A 5xx answer (500, 502, 503, …) with Azure's error body.
    case serverError(status: Int)
    /// The normal answer, delayed.
    case latency(Duration)
    /// 403 `Forbidden` with inner error `ForbiddenByRbac` (the identity lacks a role assignment).
    case forbiddenByRbac
    /// 403 `Forbidden` with inner error `ForbiddenByConnection`: the vault's public network access
    /// is disabled and the request came neither from a trusted service nor a private endpoint.
    case forbiddenByConnection
    /// 404 with an HTML page instead of Key Vault's JSON error, as a proxy or a web server at a
    /// wrong vault URL answers.
    case notFoundPage
    /// 401 with the challenge, as when Azure no longer accepts the token (revoked, tenant moved).
    case unauthorized
    /// 200 with a body that is not JSON.
    case malformedJSON
    /// The connection is closed without an answer.
    case closeConnection
}

/// Which requests a fault applies to: an optional endpoint, an optional method and a path
/// pattern. The pattern is a prefix (`/keys/k1`, `/deletedkeys/`, `/<tenant>/oauth2/v2.0/token`),
/// or, starting with `*`, a suffix (`*/unwrapkey`).
public struct RequestMatcher: Sendable, Equatable {
    public var endpoint: RecordedRequest.Endpoint?
    public var method: String?
    public var path: String

    public init(endpoint: RecordedRequest.Endpoint? = nil, method: String? = nil, path: String = "/") {
        self.endpoint = endpoint
        self.method = method?.uppercased()
        self.path = path
    }

    /// Every request.
    public static let any = RequestMatcher()
    /// Every keys-API request (authenticated; the challenge round trip is never faulted).
    public static let vault = RequestMatcher(endpoint: .vault)
    /// The token endpoint.
    public static let token = RequestMatcher(endpoint: .token)
    /// The IMDS managed-identity endpoint.
    public static let imds = RequestMatcher(endpoint: .imds)
    /// `POST …/unwrapkey` of any key and version.
    public static let unwrap = RequestMatcher(endpoint: .vault, method: "POST", path: "*/unwrapkey")

    /// Keys-API requests whose path starts with `prefix`, optionally of one method.
    public static func vault(_ method: String? = nil, path prefix: String) -> RequestMatcher {
        RequestMatcher(endpoint: .vault, method: method, path: prefix)
    }

    func matches(_ endpoint: RecordedRequest.Endpoint, method: String, path: String) -> Bool {
        if let wanted = self.endpoint, wanted != endpoint { return false }
        if let wanted = self.method, wanted != method { return false }
        if self.path.hasPrefix("*") { return path.hasSuffix(self.path.dropFirst()) }
        return path.hasPrefix(self.path)
    }
}

/// One request as the server answered it, for tests to count and inspect. Bodies and headers are
/// not kept (they carry secrets and tokens).
public struct RecordedRequest: Sendable, Equatable {
    /// Which of the server's endpoints the request went to.
    public enum Endpoint: String, Sendable {
        case vault, token, discovery, imds
    }

    public var endpoint: Endpoint
    public var method: String
    public var path: String
    public var query: String?
    /// The status sent, or `nil` when the connection was closed instead.
    public var status: Int?
    /// Whether the request carried an `Authorization` header.
    public var hadAuthorization: Bool
    /// The fault injected, if any.
    public var fault: Fault?
}
