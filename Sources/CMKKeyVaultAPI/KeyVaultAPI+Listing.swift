import Foundation

extension KeyVaultAPI {
    /// The largest page Azure serves (`maxresults` 1…25).
    static let maxPageSize = 25

    func listVersions(_ name: String, query: [String: String], apiVersion: String) throws -> ServerResponse {
        guard let key = try read(name).live else { throw KeyVaultError.keyNotFound(name) }
        // Newest first, as the service returned them in the recorded paged listing.
        let items = key.versions.reversed().map { Wire.KeyItem(kid: kid(name, $0.version), attributes: attributes($0), tags: $0.tags) }
        return try page(items, path: "/keys/\(name)/versions", query: query, apiVersion: apiVersion)
    }

    func listKeys(query: [String: String], apiVersion: String) throws -> ServerResponse {
        let keys = try store.entries().compactMap(\.live).sorted { $0.name < $1.name }
        let items = keys.map { Wire.KeyItem(kid: "\(vaultURL)/keys/\($0.name)", attributes: attributes($0.latest), tags: $0.latest.tags) }
        return try page(items, path: "/keys", query: query, apiVersion: apiVersion)
    }

    func listDeletedKeys(query: [String: String], apiVersion: String) throws -> ServerResponse {
        let now = now
        let deleted = try store.entries().compactMap(\.deleted).filter { $0.scheduledPurgeDate > now }.sorted { $0.key.name < $1.key.name }
        return try page(deleted.map(deletedBundle), path: "/deletedkeys", query: query, apiVersion: apiVersion)
    }

    /// One page of `items` with `maxresults` and an opaque `$skiptoken` in `nextLink`, as Azure pages.
    private func page<Item: Encodable>(_ items: [Item], path: String, query: [String: String], apiVersion: String) throws -> ServerResponse {
        var size = Self.maxPageSize
        if let text = query["maxresults"] {
            guard let value = Int(text), (1...Self.maxPageSize).contains(value) else {
                throw KeyVaultError.badParameter("The value of maxresults (\(text)) is invalid; it must be an integer from 1 to \(Self.maxPageSize).")
            }
            size = value
        }
        var offset = 0
        if let token = query["$skiptoken"] {
            guard let decoded = KeyVaultBase64URL.decode(token), let text = String(data: decoded, encoding: .utf8), text.hasPrefix("offset:"),
                let value = Int(text.dropFirst("offset:".count)), value >= 0
            else {
                throw KeyVaultError.badParameter("The $skiptoken value is invalid.")
            }
            offset = value
        }
        let slice = Array(items.dropFirst(offset).prefix(size))
        var nextLink: String?
        if offset + size < items.count {
            let token = KeyVaultBase64URL.encode(Data("offset:\(offset + size)".utf8))
            let maxResults = query["maxresults"].map { "&maxresults=\($0)" } ?? ""
            nextLink = "\(vaultURL)\(path)?api-version=\(apiVersion)&$skiptoken=\(token)\(maxResults)"
        }
        return .json(200, Wire.Page(value: slice, nextLink: nextLink))
    }
}
