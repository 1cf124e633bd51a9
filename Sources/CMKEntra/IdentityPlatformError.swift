import Foundation

/// An error of the Microsoft identity platform's token endpoint, in the shape Entra ID returns:
/// `{"error":"invalid_client","error_description":"AADSTS7000215: …","error_codes":[7000215],…}`.
/// Microsoft's client libraries (MSAL, azure-identity) read `error`, `error_description` and
/// `error_codes`; both `cmk-vault` and the Azure test server answer with it.
public struct IdentityPlatformError: Sendable, Hashable, Error {
    /// The OAuth 2.0 error (`invalid_client`, `invalid_request`, …).
    public var error: String
    /// `AADSTSnnnn: text`.
    public var description: String
    public var code: Int?

    public init(error: String, description: String, code: Int?) {
        self.error = error
        self.description = description
        self.code = code
    }

    /// The body as Entra sends it: the description followed by trace and correlation ids and the time.
    public struct Body: Codable, Sendable {
        public var error: String
        public var error_description: String
        public var error_codes: [Int]?
        public var timestamp: String
        public var trace_id: String
        public var correlation_id: String
        public var error_uri: String?
    }

    /// The JSON body, with fresh trace and correlation ids.
    public func body(at now: Date = Date()) -> Body {
        let timestamp = ISO8601DateFormatter().string(from: now)
        let trace = UUID().uuidString.lowercased(), correlation = UUID().uuidString.lowercased()
        let text = "\(description)\r\nTrace ID: \(trace)\r\nCorrelation ID: \(correlation)\r\nTimestamp: \(timestamp)"
        return Body(error: error, error_description: text, error_codes: code.map { [$0] }, timestamp: timestamp, trace_id: trace,
                    correlation_id: correlation, error_uri: code.map { "https://login.microsoftonline.com/error?code=\($0)" })
    }

    public static func tenantNotFound(_ tenant: String) -> Self {
        Self(error: "invalid_request", description: "AADSTS90002: Tenant '\(tenant)' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", code: 90002)
    }

    public static func missingParameter(_ name: String) -> Self {
        Self(error: "invalid_request", description: "AADSTS900144: The request body must contain the following parameter: '\(name)'.", code: 900144)
    }

    public static func unsupportedGrantType(_ grant: String) -> Self {
        Self(error: "unsupported_grant_type", description: "AADSTS70003: The app requested an unsupported grant type '\(grant)'.", code: 70003)
    }

    public static func unknownClient(_ clientID: String, tenant: String) -> Self {
        Self(error: "unauthorized_client",
             description: "AADSTS700016: Application with identifier '\(clientID)' was not found in the directory '\(tenant)'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
             code: 700016)
    }

    public static func invalidSecret(_ clientID: String) -> Self {
        Self(error: "invalid_client",
             description: "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '\(clientID)'.",
             code: 7000215)
    }

    public static func expiredSecret(_ clientID: String) -> Self {
        Self(error: "invalid_client",
             description: "AADSTS7000222: The provided client secret keys for app '\(clientID)' are expired. Create new keys for your app, or consider using certificate credentials for added security.",
             code: 7000222)
    }

    public static func missingCredential() -> Self {
        Self(error: "invalid_client", description: "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.", code: 7000218)
    }

    public static func invalidScope(_ scope: String) -> Self {
        Self(error: "invalid_scope",
             description: "AADSTS1002012: The provided value for scope \(scope) is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
             code: 1002012)
    }

    public static func invalidAssertion(_ detail: String, code: Int = 700027) -> Self {
        Self(error: "invalid_client", description: "AADSTS\(code): \(detail)", code: code)
    }

    public static func invalidRequest(_ detail: String) -> Self {
        Self(error: "invalid_request", description: detail, code: nil)
    }

    /// Too many failed sign-ins (Entra's AADSTS50196-style throttling; sent with 429 and `Retry-After`).
    public static func throttled(retryAfter seconds: Int) -> Self {
        Self(error: "temporarily_unavailable",
             description: "AADSTS50196: The server terminated an operation because it encountered a client request loop or too many failed sign-ins. Retry after \(seconds) seconds.",
             code: 50196)
    }
}
