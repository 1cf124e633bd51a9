import CMKCore
import CMKIdentity
import CMKMetrics
import HTTPTypes
import Hummingbird

/// Counts every HTTPS request by the router's route pattern (`context.endpointPath`, set when a
/// route matched; never the raw path, which a client chooses), method and status, and times it
/// (`metrics` in the configuration; docs/metrics.md). Added to the router before any route, so it
/// wraps them all and the not-found answer.
struct RequestMetrics: RouterMiddleware {
    typealias Context = VaultRequestContext
    let metrics: VaultServiceMetrics

    func handle(_ request: Request, context: VaultRequestContext, next: (Request, VaultRequestContext) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(request, context, status: response.status.code, since: start)
            return response
        } catch {
            record(request, context, status: (error as? any HTTPResponseError)?.status.code ?? 500, since: start)
            throw error
        }
    }

    private func record(_ request: Request, _ context: VaultRequestContext, status: Int, since start: ContinuousClock.Instant) {
        // Hummingbird's not-found answer names its route NotFound: no route matched.
        let route = context.endpointPath.flatMap { $0 == "NotFound" ? nil : $0 }
        metrics.httpRequest(route: route, method: request.method.rawValue, status: status,
                            seconds: (ContinuousClock.now - start).timeInterval)
    }
}

extension Role {
    /// The `role` label value (VaultServiceMetrics.roles).
    var metricLabel: String {
        switch self {
        case .administrator: "administrator"
        case .servicePrincipal: "service-principal"
        case .platform: "platform"
        }
    }
}
