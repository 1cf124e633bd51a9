import CMKKeyVaultAPI
import Foundation

extension AzureKeyVaultTestServer {
    /// What the vault answered to a direct administration call: the key bundle's version id and
    /// the whole JSON body. `@unchecked Sendable` is safe: `json` holds only the immutable values
    /// `JSONSerialization` produces (strings, numbers, arrays, dictionaries), never mutated.
    public struct AdministrationResult: @unchecked Sendable {
        /// The version the answer is about (last segment of `kid`), if it names one.
        public var version: String?
        /// The JSON body as `JSONSerialization` reads it.
        public var json: [String: Any]
    }

    /// Acts on the vault as its owner would in the portal, without HTTP: the same keys-API code
    /// answers, but no token, fault, rate limit or request-log entry is involved. For setting up
    /// and changing state in tests (create, rotate, disable, delete, recover, purge). Throws with
    /// Azure's error code and message when the vault refuses.
    @discardableResult
    public func administer(_ method: String, _ path: String, body: [String: Any]? = nil) throws -> AdministrationResult {
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) } ?? Data()
        let separator = path.contains("?") ? "&" : "?"
        let request = ServerRequest(method: method, uri: "\(path)\(separator)api-version=\(KeyVaultAPI.newestAPIVersion)", headers: [], body: data)
        let response = dispatcher.vault.handle(request)
        let json = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
        guard (200..<300).contains(response.status) else {
            let error = json["error"] as? [String: Any]
            throw TestServerError("\(method) \(path): \(response.status) \(error?["code"] ?? "") \(error?["message"] ?? "")")
        }
        let kid = (json["key"] as? [String: Any])?["kid"] as? String
        return AdministrationResult(version: kid.flatMap { $0.split(separator: "/").last.map(String.init) }, json: json)
    }

    /// Creates an RSA key (or a new version of an existing one); returns the version id.
    @discardableResult
    public func createKey(_ name: String, size: Int = 2048, keyOps: [String]? = nil, enabled: Bool = true) throws -> String {
        var body: [String: Any] = ["kty": "RSA", "key_size": size, "attributes": ["enabled": enabled]]
        if let keyOps { body["key_ops"] = keyOps }
        return try administer("POST", "/keys/\(name)/create", body: body).version ?? ""
    }

    /// Adds a version that becomes current; returns its id.
    @discardableResult
    public func rotateKey(_ name: String) throws -> String {
        try administer("POST", "/keys/\(name)/rotate").version ?? ""
    }

    /// Changes a version's attributes (`nil` leaves one as it is).
    public func updateVersion(_ name: String, version: String, enabled: Bool? = nil, notBefore: Date? = nil, expires: Date? = nil) throws {
        var attributes: [String: Any] = [:]
        if let enabled { attributes["enabled"] = enabled }
        if let notBefore { attributes["nbf"] = Int(notBefore.timeIntervalSince1970) }
        if let expires { attributes["exp"] = Int(expires.timeIntervalSince1970) }
        try administer("PATCH", "/keys/\(name)/\(version)", body: ["attributes": attributes])
    }

    /// Soft-deletes a key (all versions).
    public func deleteKey(_ name: String) throws { try administer("DELETE", "/keys/\(name)") }

    /// Recovers a soft-deleted key.
    public func recoverKey(_ name: String) throws { try administer("POST", "/deletedkeys/\(name)/recover") }

    /// Purges a soft-deleted key (refused under purge protection, as in Azure).
    public func purgeKey(_ name: String) throws { try administer("DELETE", "/deletedkeys/\(name)") }
}
