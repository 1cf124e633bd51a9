import CMKAzureKeyVault
import Foundation

/// One file of recorded Key Vault traffic (the Azure SDK test-proxy format), parsed with
/// `JSONSerialization` so that the test's reading is independent of the provider's decoding.
struct Recording {
    struct Entry {
        var index: Int
        var method: String
        var url: URL
        var requestBody: Any?
        var status: Int
        var headers: [String: String]
        var body: Any?

        var route: String { Route.of(method, url.path) }
        /// The path exactly as recorded (percent-encoded, trailing slash kept).
        var rawPath: String { URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedPath ?? url.path }
        var keyName: String { url.path.split(separator: "/").dropFirst().first.map(String.init) ?? "" }
        var object: [String: Any] { body as? [String: Any] ?? [:] }

        var response: AzureHTTPResponse {
            let data = body.flatMap { try? JSONSerialization.data(withJSONObject: $0) } ?? Data()
            return AzureHTTPResponse(status: status, headers: headers.map { ($0.key, $0.value) }, body: data)
        }

        var requestData: Data? { requestBody.flatMap { try? JSONSerialization.data(withJSONObject: $0) } }
    }

    var name: String
    var entries: [Entry]

    init(url: URL) throws {
        let name = url.lastPathComponent
        self.name = name
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        guard let list = root?["Entries"] as? [[String: Any]] else { throw RecordingError("\(name) has no Entries array") }
        entries = try list.enumerated().map { index, raw in
            guard let uri = raw["RequestUri"] as? String, let url = URL(string: uri), let method = raw["RequestMethod"] as? String,
                  let status = raw["StatusCode"] as? Int else { throw RecordingError("\(name) entry \(index) is incomplete") }
            let body = raw["ResponseBody"].flatMap { $0 is NSNull ? nil : $0 }
            let request = raw["RequestBody"].flatMap { $0 is NSNull ? nil : $0 }
            return Entry(index: index, method: method, url: url, requestBody: request, status: status,
                         headers: raw["ResponseHeaders"] as? [String: String] ?? [:], body: body)
        }
    }

    /// The recordings folder: `$AKV_RECORDINGS_DIR`, else `<package>/../shared/fixtures/azure-keyvault/recordings`.
    static func folder() -> URL {
        if let path = ProcessInfo.processInfo.environment["AKV_RECORDINGS_DIR"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return package.deletingLastPathComponent().appendingPathComponent("shared/fixtures/azure-keyvault/recordings").standardizedFileURL
    }

    /// Every `.json` file of the folder; throws when the folder is missing or holds none.
    static func all() throws -> [Recording] {
        let folder = folder()
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else {
            throw RecordingError("the recordings folder \(folder.path) is missing (set AKV_RECORDINGS_DIR)")
        }
        let files = names.filter { $0.hasSuffix(".json") }.sorted()
        guard !files.isEmpty else { throw RecordingError("the recordings folder \(folder.path) holds no .json recordings") }
        return try files.map { try Recording(url: folder.appendingPathComponent($0)) }
    }
}

struct RecordingError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The test's own base64url decoder (independent of the provider's).
func decodeBase64URL(_ text: String) -> Data? {
    var base64 = String(text.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
    base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
    return Data(base64Encoded: base64)
}
