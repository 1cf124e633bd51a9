import CMKIdentity
import Foundation
import HTTPTypes
import Hummingbird

/// Checks `Authorization: Bearer …` on every request of a route group: the token must verify
/// (signature, issuer, audience = the management API, times) and the credential it names must
/// still be live — a revoked key or a removed administrator is refused from the next request on.
/// The caller's role must be one of `roles`. Failures are 401 with a challenge (or 403 for a
/// valid token of another role), a security-log event, and a count in the failure throttle.
struct BearerAuthentication: RouterMiddleware {
    typealias Context = VaultRequestContext
    let routes: VaultRoutes
    let roles: Set<Role>

    init(routes: VaultRoutes, roles: Set<Role>) {
        self.routes = routes
        self.roles = roles
    }

    /// `Bearer authorization="https://host/{tenant}", resource="https://host"`, as Key Vault challenges.
    var challenge: String {
        "Bearer authorization=\"\(routes.publicURL)/\(routes.tenantID)\", resource=\"\(routes.managementAudience)\""
    }

    func handle(_ request: Request, context: VaultRequestContext, next: (Request, VaultRequestContext) async throws -> Response) async throws -> Response {
        if let wait = routes.throttle.retryAfter(clientID: nil, address: context.remoteAddress) {
            routes.metrics?.throttleRefused(.bearer)
            throw ServiceError(.tooManyRequests, "TooManyRequests", "too many failed authentications from this address; retry after \(wait) seconds",
                               headers: [.retryAfter: "\(wait)"])
        }
        guard let header = request.headers[.authorization] else {
            throw ServiceError(.unauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", headers: [.wwwAuthenticate: challenge])
        }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            return try await refuse("the Authorization header is not a Bearer token", reason: "not-bearer", context: context)
        }
        let verification = try routes.tokens.verify(String(header.dropFirst(7)), audience: routes.managementAudience)
        switch verification {
        case .refused(let refusal):
            return try await refuse("the token was refused (\(refusal.rawValue))", reason: refusal.rawValue, context: context)
        case .valid(let token):
            guard roles.contains(token.principal.role) else {
                await routes.recordRefusal(.accessDenied(principal: token.principal, route: context.endpointPath ?? request.uri.path, address: context.remoteAddress))
                throw ServiceError.forbidden("the caller's role (\(token.principal.role.rawValue)) may not use this route; it needs \(roles.map(\.rawValue).sorted().joined(separator: " or "))")
            }
            var context = context
            context.principal = token.principal
            return try await next(request, context)
        }
    }

    private func refuse(_ message: String, reason: String, context: VaultRequestContext) async throws -> Response {
        routes.throttle.recordFailure(clientID: nil, address: context.remoteAddress)
        await routes.recordRefusal(.tokenRefused(reason: reason, address: context.remoteAddress))
        throw ServiceError(.unauthorized, "Unauthorized", message, headers: [.wwwAuthenticate: challenge + ", error=\"invalid_token\""])
    }
}
