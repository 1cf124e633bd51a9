/// The OpenID Connect discovery document of a tenant, in the Microsoft identity platform's shape
/// (`GET /{tenant}/v2.0/.well-known/openid-configuration`): MSAL reads the token endpoint from it.
public enum OpenIDConfiguration {
    /// The document for `tenant` under `authority` (`https://host[:port]`, no trailing slash).
    public static func document(authority: String, tenant: String) -> [String: String] {
        let base = "\(authority)/\(tenant)"
        return [
            "token_endpoint": "\(base)/oauth2/v2.0/token",
            "authorization_endpoint": "\(base)/oauth2/v2.0/authorize",
            "device_authorization_endpoint": "\(base)/oauth2/v2.0/devicecode",
            "end_session_endpoint": "\(base)/oauth2/v2.0/logout",
            "jwks_uri": "\(base)/discovery/v2.0/keys",
            "issuer": "\(base)/v2.0",
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
        ]
    }

    /// The resource a client-credentials `scope` names: exactly one `RESOURCE/.default` (OpenID
    /// scopes aside), or nil.
    public static func resource(ofScope scope: String) -> String? {
        let resources = scope.split(separator: " ").map(String.init).filter { !["openid", "profile", "offline_access"].contains($0) }
        guard resources.count == 1, let resource = resources.first, resource.hasSuffix("/.default") else { return nil }
        let audience = String(resource.dropLast("/.default".count))
        return audience.isEmpty ? nil : audience
    }
}
