import CMKCore
import CMKEntra
import Foundation
import HTTPTypes
import Hummingbird

/// An error answered as `{"error":{"code":"…","message":"…"}}` (the shape of Azure's and Microsoft
/// Graph's APIs), with the status it belongs to. Messages name what was wrong and never contain
/// a secret or a token.
public struct ServiceError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`).
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    struct Body: Encodable {
        struct Inner: Encodable {
            var code: String
            var message: String
        }
        var error: Inner
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        let data = try JSONEncoder().encode(Body(error: .init(code: code, message: message)))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func badRequest(_ message: String) -> ServiceError { ServiceError(.badRequest, "BadParameter", message) }
    static func notFound(_ message: String) -> ServiceError { ServiceError(.notFound, "NotFound", message) }
    static func forbidden(_ message: String) -> ServiceError { ServiceError(.forbidden, "Forbidden", message) }
    /// 503: the security log could not record the change, so it was not made.
    static func notRecorded(_ error: EventNotRecorded) -> ServiceError { ServiceError(.serviceUnavailable, "SecurityLogUnavailable", error.detail) }
}

/// A token-endpoint error in the identity platform's shape, with its status (and `Retry-After`).
struct TokenEndpointError: Error, HTTPResponseError {
    var status: HTTPResponse.Status
    var error: IdentityPlatformError
    var retryAfter: Int?

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"]
        if let retryAfter { headers[.retryAfter] = "\(retryAfter)" }
        let data = try JSONEncoder().encode(error.body())
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension TokenEndpointError {
    /// 503 in the identity platform's shape: the token's record could not be written, so no
    /// token was issued.
    static func notRecorded(_ error: EventNotRecorded) -> TokenEndpointError {
        TokenEndpointError(status: .serviceUnavailable, error: IdentityPlatformError(error: "temporarily_unavailable", description: error.detail, code: nil))
    }
}

/// A JSON response with `Cache-Control: no-store` (nothing this service answers may be cached).
struct JSONResponse<Value: Encodable & Sendable>: ResponseGenerator {
    var status: HTTPResponse.Status = .ok
    var value: Value

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(GraphDate.string(date))
        }
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Dates as Microsoft Graph writes them: ISO 8601 in UTC with a `Z` (`2026-12-05T07:10:00Z`).
enum GraphDate {
    static func string(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    /// Never through ICU's formatter, which traps on a long fraction (``RFC3339``).
    static func parse(_ text: String) -> Date? {
        RFC3339.parse(text)
    }
}
