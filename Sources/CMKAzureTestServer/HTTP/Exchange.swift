import CMKEntra
import Foundation

/// One HTTP request as the emulator sees it.
struct ServerRequest: Sendable {
    var method: String
    /// The path without the query, still percent-encoded as sent.
    var path: String
    /// The raw query string (without `?`), if any.
    var rawQuery: String?
    var headers: [(name: String, value: String)]
    var body: Data

    init(method: String, uri: String, headers: [(name: String, value: String)], body: Data) {
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

    func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// Query parameters, percent-decoded; the first value wins for repeated names.
    var query: [String: String] { FormEncoding.decode(rawQuery ?? "") }

    /// The path split on `/`, percent-decoded, keeping empty segments (`/keys/k/` → `["keys", "k", ""]`).
    var segments: [String] {
        path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map {
            String($0).removingPercentEncoding ?? String($0)
        }
    }
}

/// One HTTP response, or what to do instead of answering.
struct ServerResponse: Sendable {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: Data

    init(status: Int, headers: [(name: String, value: String)] = [], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response of an encodable value.
    static func json(_ status: Int, _ value: some Encodable, headers: [(name: String, value: String)] = []) -> ServerResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let body = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return ServerResponse(status: status, headers: [("Content-Type", "application/json; charset=utf-8")] + headers, body: body)
    }
}

/// `application/x-www-form-urlencoded` decoding (query strings and token request bodies).
