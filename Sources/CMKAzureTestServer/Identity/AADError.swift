import Foundation

/// An identity-platform error as Entra ID returns it:
/// `{"error":"invalid_client","error_description":"AADSTS7000215: …","error_codes":[7000215],…}`.
struct AADError: Sendable {
    var error: String
    var description: String
    var code: Int?

    private struct Body: Encodable {
        var error: String
        var error_description: String
        var error_codes: [Int]?
        var timestamp: String
        var trace_id: String
        var correlation_id: String
        var error_uri: String?
    }

    func response(status: Int) -> ServerResponse {
        let timestamp = ISO8601DateFormatter().string(from: Date())
        let trace = UUID().uuidString.lowercased(), correlation = UUID().uuidString.lowercased()
        let text = "\(description)\r\nTrace ID: \(trace)\r\nCorrelation ID: \(correlation)\r\nTimestamp: \(timestamp)"
        return .json(status, Body(
            error: error, error_description: text, error_codes: code.map { [$0] }, timestamp: timestamp, trace_id: trace,
            correlation_id: correlation, error_uri: code.map { "https://login.microsoftonline.com/error?code=\($0)" }))
    }

    static func tenantNotFound(_ tenant: String) -> AADError {
        AADError(error: "invalid_request", description: "AADSTS90002: Tenant '\(tenant)' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", code: 90002)
    }

    static func missingParameter(_ name: String) -> AADError {
        AADError(error: "invalid_request", description: "AADSTS900144: The request body must contain the following parameter: '\(name)'.", code: 900144)
    }

    static func unsupportedGrantType(_ grant: String) -> AADError {
        AADError(error: "unsupported_grant_type", description: "AADSTS70003: The app requested an unsupported grant type '\(grant)'.", code: 70003)
    }

    static func unknownClient(_ clientID: String, tenant: String) -> AADError {
        AADError(
            error: "unauthorized_client",
            description: "AADSTS700016: Application with identifier '\(clientID)' was not found in the directory '\(tenant)'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
            code: 700016)
    }

    static func invalidSecret(_ clientID: String) -> AADError {
        AADError(
            error: "invalid_client",
            description: "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '\(clientID)'.",
            code: 7000215)
    }

    static func missingCredential() -> AADError {
        AADError(error: "invalid_client", description: "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.", code: 7000218)
    }

    static func invalidScope(_ scope: String) -> AADError {
        AADError(
            error: "invalid_scope",
            description: "AADSTS1002012: The provided value for scope \(scope) is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
            code: 1002012)
    }

    static func invalidAssertion(_ detail: String, code: Int = 700027) -> AADError {
        AADError(error: "invalid_client", description: "AADSTS\(code): \(detail)", code: code)
    }

    static func invalidRequest(_ detail: String) -> AADError {
        AADError(error: "invalid_request", description: detail, code: nil)
    }
}
