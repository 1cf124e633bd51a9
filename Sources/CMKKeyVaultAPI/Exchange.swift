import CMKEntra
import Foundation

/// One HTTP request as the keys API sees it (the Azure test server and cmk-vault build it from theirs).
public struct ServerRequest: Sendable {
    public var method: String
    /// The path without the query, still percent-encoded as sent.
    public var path: String
    /// The raw query string (without `?`), if any.
    public var rawQuery: String?
    public var headers: [(name: String, value: String)]
    public var body: Data

    public init(method: String, uri: String, headers: [(name: String, value: String)], body: Data) {
        self.method = method
        if let mark = uri.firstIndex(of: "?") {
            path = String(uri[..<mark])
            rawQuery = String(uri[uri.index(after: mark)...])
        } else {
            path = uri
            rawQuery = nil
        }
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// Query parameters, percent-decoded; the first value wins for repeated names.
    public var query: [String: String] { FormEncoding.decode(rawQuery ?? "") }

    /// The path split on `/`, percent-decoded, keeping empty segments (`/keys/k/` → `["keys", "k", ""]`).
    public var segments: [String] {
        path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map {
            String($0).removingPercentEncoding ?? String($0)
        }
    }
}

/// One HTTP response, or what to do instead of answering.
public struct ServerResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: Data

    public init(status: Int, headers: [(name: String, value: String)] = [], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response of an encodable value.
    public static func json(_ status: Int, _ value: some Encodable, headers: [(name: String, value: String)] = []) -> ServerResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let body = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return ServerResponse(status: status, headers: [("Content-Type", "application/json; charset=utf-8")] + headers, body: body)
    }
}
