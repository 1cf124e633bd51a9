import CMKIdentity
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The console's calls of the keys API: each one a request through ``KeyVaultRoutes/handle(_:context:)``
/// as the signed-in service principal, so the console's changes get the same security-log
/// records, rate limit, key events and answers as the API's.
struct ConsoleKeysAPI: Sendable {
    let keys: KeyVaultRoutes
    let principal: Principal
    let address: String
    let maxUploadSize: Int

    static let apiVersion = "7.5"

    /// The API's answer: status and JSON body (nil when empty or not JSON).
    struct Answer: @unchecked Sendable {
        var status: Int
        var json: [String: Any]?
        var ok: Bool { (200..<300).contains(status) }
        /// Azure's `error.message`, for a refused request.
        var message: String {
            ((json?["error"] as? [String: Any])?["message"] as? String) ?? "the keys API answered \(status)"
        }
    }

    func call(_ method: HTTPRequest.Method, _ path: String, body: [String: Any]? = nil) async throws -> Answer {
        var head = HTTPRequest(method: method, scheme: "https", authority: "console", path: path + "?api-version=" + Self.apiVersion)
        var bytes = ByteBuffer()
        if let body {
            head.headerFields[.contentType] = "application/json"
            bytes = ByteBuffer(data: try JSONSerialization.data(withJSONObject: body))
        }
        var context = VaultRequestContext(source: .init(logger: keys.routes.consoleLogger, remoteAddress: address, maxUploadSize: maxUploadSize))
        context.principal = principal
        let response = try await keys.handle(Request(head: head, body: .init(buffer: bytes)), context: context)
        let collector = Collector()
        try await response.body.write(collector)
        let json = collector.bytes.isEmpty ? nil : (try? JSONSerialization.jsonObject(with: collector.bytes)) as? [String: Any]
        return Answer(status: Int(response.status.code), json: json)
    }

    /// Collects a response body in memory.
    final class Collector: ResponseBodyWriter, @unchecked Sendable {
        var bytes = Data()
        func write(_ buffer: ByteBuffer) async throws { bytes.append(contentsOf: buffer.readableBytesView) }
        func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    // MARK: Azure's shapes, read loosely

    /// One version of a key, from a key bundle or a list item.
    struct Version: Sendable {
        var id: String
        var enabled: Bool
        var created: Date?
        var expires: Date?
        var notBefore: Date?

        init?(_ item: [String: Any]) {
            guard let kid = (item["kid"] as? String) ?? ((item["key"] as? [String: Any])?["kid"] as? String),
                  let version = kid.split(separator: "/").last else { return nil }
            id = String(version)
            let attributes = item["attributes"] as? [String: Any] ?? [:]
            enabled = attributes["enabled"] as? Bool ?? true
            created = Self.date(attributes["created"])
            expires = Self.date(attributes["exp"])
            notBefore = Self.date(attributes["nbf"])
        }

        static func date(_ value: Any?) -> Date? {
            (value as? NSNumber).map { Date(timeIntervalSince1970: $0.doubleValue) }
        }
    }

    /// The last path segment of an Azure id (`…/keys/NAME` → NAME).
    static func name(ofID id: Any?) -> String? {
        (id as? String)?.split(separator: "/").last.map(String.init)
    }
}

extension VaultRoutes {
    var consoleLogger: Logger { Logger(label: "cmk-vault.console") }
}
