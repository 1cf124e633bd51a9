import Foundation

/// The Key Vault 401 challenge:
/// `WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>", resource="https://vault.azure.net"`
/// (older services say `authorization_uri`; newer ones may give `scope` instead of `resource`).
public struct AuthenticationChallenge: Sendable, Hashable {
    /// The authority URL the vault named.
    public var authorization: URL?
    /// The tenant: the first path segment of the authorization URL.
    public var tenantID: String?
    /// The token resource (`resource`, or `scope` without `/.default`).
    public var resource: String

    /// Parses the header; nil unless it is a Bearer challenge naming a resource or scope.
    public init?(header: String) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bearer") else { return nil }
        let parameters = Self.parameters(String(trimmed.dropFirst("bearer".count)))
        let authority = parameters["authorization"] ?? parameters["authorization_uri"]
        if let authority, let url = URL(string: authority) {
            authorization = url
            tenantID = url.path.split(separator: "/").first.map(String.init)
        } else {
            authorization = nil
            tenantID = nil
        }
        if let resource = parameters["resource"], !resource.isEmpty {
            self.resource = resource
        } else if let scope = parameters["scope"], !scope.isEmpty {
            self.resource = scope.hasSuffix("/.default") ? String(scope.dropLast("/.default".count)) : scope
        } else {
            return nil
        }
    }

    /// `key="value"` or `key=value` pairs separated by commas or spaces.
    static func parameters(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        var index = text.startIndex
        func skip(_ characters: Set<Character>) {
            while index < text.endIndex, characters.contains(text[index]) { index = text.index(after: index) }
        }
        while index < text.endIndex {
            skip([" ", ","])
            let nameStart = index
            while index < text.endIndex, text[index] != "=", text[index] != "," { index = text.index(after: index) }
            let name = text[nameStart..<index].trimmingCharacters(in: .whitespaces).lowercased()
            guard index < text.endIndex, text[index] == "=" else { continue }
            index = text.index(after: index)
            var value = ""
            if index < text.endIndex, text[index] == "\"" {
                index = text.index(after: index)
                while index < text.endIndex, text[index] != "\"" {
                    if text[index] == "\\" { index = text.index(after: index); if index == text.endIndex { break } }
                    value.append(text[index])
                    index = text.index(after: index)
                }
                if index < text.endIndex { index = text.index(after: index) }
            } else {
                while index < text.endIndex, text[index] != ",", text[index] != " " {
                    value.append(text[index])
                    index = text.index(after: index)
                }
            }
            if !name.isEmpty { result[name] = value }
        }
        return result
    }

    /// Whether a challenge may name `resource` for `vaultHost`: it is the configured resource, or
    /// its host is a domain suffix of the vault's host (as the Azure SDKs verify), so a vault
    /// cannot make us fetch a token for an unrelated service.
    public static func accepts(resource: String, configured: String, vaultHost: String) -> Bool {
        if resource.trimmingSlash == configured.trimmingSlash { return true }
        guard let host = URL(string: resource)?.host?.lowercased(), !host.isEmpty else { return false }
        let vault = vaultHost.lowercased()
        return vault == host || vault.hasSuffix("." + host)
    }
}

extension String {
    var trimmingSlash: String { hasSuffix("/") ? String(dropLast()) : self }
}
