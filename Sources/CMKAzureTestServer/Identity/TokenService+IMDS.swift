import CMKEntra
import CMKKeyVaultAPI
import Foundation

extension TokenService {
    /// The Azure Instance Metadata Service token endpoint,
    /// `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…` with `Metadata: true`.
    /// IMDS answers in plain HTTP and renders every number as a string.
    func handleIMDS(_ request: ServerRequest) -> ServerResponse {
        guard request.path == "/metadata/identity/oauth2/token" else {
            return AADError.invalidRequest("Unknown IMDS path \(request.path).").response(status: 404)
        }
        guard request.method == "GET" else { return AADError.invalidRequest("IMDS accepts only GET.").response(status: 405) }
        guard request.header("Metadata")?.lowercased() == "true" else {
            return imdsError("invalid_request", "Required metadata header not specified")
        }
        let query = request.query
        guard query["api-version"] != nil else { return imdsError("invalid_request", "Required query variable 'api-version' is missing") }
        guard let resource = query["resource"], !resource.isEmpty else {
            return imdsError("invalid_request", "Required query variable 'resource' is missing")
        }
        guard let identity = configuration.managedIdentityClientID else { return imdsError("invalid_request", "Identity not found") }
        if let requested = query["client_id"], requested != identity { return imdsError("invalid_request", "Identity not found") }
        let audience = resource.hasSuffix("/") ? String(resource.dropLast()) : resource
        let issued = issue(audience: audience)
        let now = Int(configuration.clock.now().timeIntervalSince1970)
        let body: [String: String] = [
            "access_token": issued.token, "client_id": identity, "expires_in": String(issued.lifetime),
            "expires_on": String(now + issued.lifetime), "ext_expires_in": String(issued.lifetime), "not_before": String(now),
            "resource": resource, "token_type": "Bearer",
        ]
        return .json(200, body)
    }

    private func imdsError(_ error: String, _ description: String) -> ServerResponse {
        .json(400, ["error": error, "error_description": description])
    }
}
