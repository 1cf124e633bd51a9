import CMKIdentity
import CMKKeyVaultAPI
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix

/// Azure Key Vault's keys API for the service's own vault (`vault` in the configuration):
/// `/keys…` and `/deletedkeys…` with `api-version`, answered by ``KeyVaultAPI`` over the local
/// vault in `<state-directory>/vault` (docs/vault-service.md, "The keys API").
///
/// | role | may |
/// |---|---|
/// | service principal | every route: create, rotate, update, delete, recover, purge, list, wrap and unwrap, read and set the rotation policy |
/// | platform identity | read a key or a version, list versions, wrap and unwrap, read a deleted key, read the rotation policy |
/// | administrator | nothing here (administrators manage the principal's credentials) |
///
/// Every change and every key use is a security-log record appended **before** the vault acts
/// (fail closed: 503 and nothing done when it cannot be made durable); a change or use the vault
/// then refuses gets a follow-up record `<operation>-failed` with the status and error code.
/// Reads are not recorded.
struct KeyVaultRoutes: Sendable {
    let routes: VaultRoutes
    let api: KeyVaultAPI
    /// `limits.key-operations-per-10s` over every keys API request that passed authentication and the role check; nil when off.
    var rateLimit: KeyOperationRateLimit?
    /// Where a successful create, rotate, delete, recover or purge is announced (EventPublisher); nil: nowhere.
    var keyEvents: (any KeyEventSink)?
    /// Records a PATCH that disables or expires a version hosts still use as `disabled-in-use` (UsageRoutes.swift); nil: no guard.
    var inUseGuard: InUseGuard?

    /// What a request does, as far as roles and the log are concerned.
    enum Access: Equatable {
        /// A read (no record).
        case read
        /// A change or a key use, recorded as `operation`.
        case recorded(operation: String)
    }

    func register(on router: Router<VaultRequestContext>) {
        let authenticated = router.group().add(middleware: BearerAuthentication(routes: routes, roles: [.servicePrincipal, .platform]))
        for path in ["keys", "keys/**", "deletedkeys", "deletedkeys/**"] {
            for method in [HTTPRequest.Method.get, .post, .patch, .delete, .put] {
                authenticated.on(RouterPath(path), method: method) { request, context in
                    try await handle(request, context: context)
                }
            }
        }
    }

    func handle(_ request: Request, context: VaultRequestContext) async throws -> Response {
        guard let principal = context.principal else { throw ServiceError.forbidden("no caller") }
        let segments = request.uri.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        let access = Self.access(method: request.method, segments: segments)
        let response = try await handle(request, context: context, principal: principal, segments: segments, access: access)
        routes.metrics?.keyOperation(Self.metricOperation(access), clientID: principal.clientID, role: principal.role.metricLabel, status: response.status.code)
        return response
    }

    /// The `operation` label of a keys API request: a closed set, whatever path the caller sent.
    static func metricOperation(_ access: Access) -> String {
        switch access {
        case .read: return "read"
        case .recorded(let operation):
            let names = ["key-created": "create", "key-rotated": "rotate", "key-updated": "update", "key-deleted": "delete",
                         "key-rotation-policy-updated": "set-rotation-policy", "key-recovered": "recover", "key-purged": "purge",
                         "key-wrapkey": "wrapkey", "key-unwrapkey": "unwrapkey", "key-encrypt": "encrypt", "key-decrypt": "decrypt",
                         "key-sign": "sign", "key-verify": "verify"]
            return names[operation] ?? "other"
        }
    }

    private func handle(_ request: Request, context: VaultRequestContext, principal: Principal, segments: [String], access: Access) async throws -> Response {
        if principal.role == .platform, !Self.platformMay(method: request.method, segments: segments) {
            await routes.recordRefusal(.accessDenied(principal: principal, route: request.method.rawValue + " " + request.uri.path, address: context.remoteAddress))
            return Self.answer(KeyVaultError(
                status: 403, code: "Forbidden",
                message: "The platform identity \(principal.clientID) may read key versions, wrap and unwrap; \(request.method.rawValue) \(request.uri.path) needs the service principal."))
        }
        if let throttled = rateLimit?.throttle() { return Self.answer(throttled) }  // before any record: nothing was done
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        let exchange = ServerRequest(method: request.method.rawValue, uri: request.uri.description,
                                     headers: request.headers.map { (name: $0.name.rawName, value: $0.value) }, body: Data(buffer: body))
        var recordIndex: UInt64?
        var event: ServiceEvent?
        var inUse: InUseGuard.Finding?
        if case .recorded(let operation) = access {
            var recorded = ServiceEvent.keyOperation(operation, principal: principal, segments: segments, address: context.remoteAddress)
            if operation == "key-updated", let inUseGuard, let finding = inUseGuard.check(segments: segments, body: exchange.body) {
                (inUse, recorded) = (finding, inUseGuard.event(recorded, finding))
            }
            do {
                recordIndex = try await routes.events.record(recorded)
            } catch let error as EventNotRecorded {
                return Self.answer(KeyVaultError(status: 503, code: "ServiceUnavailable", message: error.detail + " Nothing was done."))
            }
            event = recorded
        }
        let api = self.api
        // RSA key generation takes up to seconds at 4096 bits: off the cooperative pool.
        let response = try await NIOThreadPool.singleton.runIfActive { api.handle(exchange) }
        if let event, !(200..<300).contains(response.status) {
            let code = (try? JSONDecoder().decode(ErrorBody.self, from: response.body))?.error.code ?? "unknown"
            await routes.recordRefusal(event.failed(recordIndex: recordIndex, reason: "\(response.status) \(code)"))
        }
        if let keyEvents, case .recorded(let operation) = access, (200..<300).contains(response.status),
           let keyEvent = KeyEvent(operation: operation, segments: segments, responseBody: response.body) {
            keyEvents.publish(keyEvent)
        }
        if let inUse, (200..<300).contains(response.status) {
            inUseGuard?.done(inUse, principal: principal, responseBody: response.body, keyEvents: keyEvents)
        }
        return Self.answer(response)
    }

    struct ErrorBody: Decodable {
        struct Detail: Decodable { var code: String }
        var error: Detail
    }

    /// Which requests change something or use a key (recorded) and which only read.
    static func access(method: HTTPRequest.Method, segments: [String]) -> Access {
        let collection = segments.first ?? ""
        let rest = Array(segments.dropFirst(2))
        switch (method, collection, rest.count) {
        case (.get, _, _):
            return .read
        case (.post, "keys", 1) where rest[0] == "create":
            return .recorded(operation: "key-created")
        case (.post, "keys", 1) where rest[0] == "rotate":
            return .recorded(operation: "key-rotated")
        case (.post, "keys", 2):
            return .recorded(operation: "key-" + rest[1].lowercased())
        case (.patch, "keys", _):
            return .recorded(operation: "key-updated")
        case (.delete, "keys", _):
            return .recorded(operation: "key-deleted")
        case (.put, "keys", 1) where rest[0].lowercased() == "rotationpolicy":
            return .recorded(operation: "key-rotation-policy-updated")
        case (.post, "deletedkeys", 1) where rest[0] == "recover":
            return .recorded(operation: "key-recovered")
        case (.delete, "deletedkeys", _):
            return .recorded(operation: "key-purged")
        default:
            // Anything else is refused by the API itself; record the attempt all the same.
            return .recorded(operation: "key-request")
        }
    }

    /// A platform identity reads keys and versions and wraps and unwraps, and reads a deleted key
    /// (how its provider tells a pulled key from a missing one); nothing else.
    static func platformMay(method: HTTPRequest.Method, segments: [String]) -> Bool {
        if method == .get, segments.first == "deletedkeys", segments.count == 2 { return true }
        guard segments.first == "keys", segments.count >= 2 else { return false }
        let rest = Array(segments.dropFirst(2))
        switch method {
        case .get: return rest.count <= 1
        case .post: return rest.count == 2 && ["wrapkey", "unwrapkey"].contains(rest[1].lowercased())
        default: return false
        }
    }

    static func answer(_ error: KeyVaultError) -> Response { answer(error.response) }

    static func answer(_ response: ServerResponse) -> Response {
        var fields = HTTPFields()
        for (name, value) in response.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        fields[.cacheControl] = "no-cache"
        return Response(status: .init(code: response.status), headers: fields, body: .init(byteBuffer: ByteBuffer(data: response.body)))
    }
}

extension ServiceEvent {
    /// A change or use of a root key: the key (and version) from the path, never a value.
    static func keyOperation(_ operation: String, principal: Principal, segments: [String], address: String) -> Self {
        var details: [String: String] = [:]
        if segments.count >= 2 { details["key"] = String(segments[1].prefix(127)) }
        // `/keys/{name}/{version}` (update) and `/keys/{name}/{version}/{operation}` (a key use) name a
        // version; `/keys/{name}/create`, `/rotate` and `/versions` do not.
        if segments.first == "keys", segments.count >= 3, !["create", "rotate", "versions", "rotationpolicy", ""].contains(segments[2].lowercased()) {
            details["version"] = String(segments[2].prefix(64))
        }
        return Self(operation: operation, actor: principal.clientID, role: principal.role.rawValue, address: address, details: details)
    }
}
