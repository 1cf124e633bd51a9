import CMKEntra
import CMKIdentity
import CMKMetrics
import CMKVaultLog
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The routes of `cmk-vault` (docs/vault-service.md):
///
/// | route | who | what |
/// |---|---|---|
/// | `GET /{tenant}/v2.0/.well-known/openid-configuration` | anyone | the discovery document MSAL reads |
/// | `GET /{tenant}/discovery/v2.0/keys` | anyone | the JWKS of the token-signing keys |
/// | `POST /{tenant}/oauth2/v2.0/token` | anyone | client credentials → a 1-hour token |
/// | `GET /v1.0/applications` | administrator | the service principal (Graph `application`) with its keys |
/// | `GET /v1.0/applications/{appId}` | administrator | the same, by client id |
/// | `POST /v1.0/applications/{appId}/addPassword` | administrator | a new key: its secret, once |
/// | `POST /v1.0/applications/{appId}/removePassword` | administrator | revoke a key by `keyId` |
/// | `POST /v1.0/me/replaceSecret` | administrator | the caller's own new secret, once |
///
/// Management routes take a bearer token whose audience is ``VaultRoutes/managementAudience``
/// (the service's public URL); a missing or refused token is 401 with a `WWW-Authenticate`
/// challenge naming the token authority and that resource.
public struct VaultRoutes: Sendable {
    public let store: IdentityStore
    public let tokens: TokenService
    public let throttle: FailureThrottle
    public let events: any ServiceEventSink
    /// `https://host[:port]`: the authority of tokens and the audience of the management API.
    public let publicURL: String
    /// The most records one page may hold.
    public let maxPageSize: Int
    /// The security log the Security Logs API serves (SecurityLogRoutes.swift); nil: no such routes.
    public let log: VaultSecurityLog?
    /// Where token issues, refusals and keys API operations are counted (`metrics` in the configuration); nil: off.
    public var metrics: VaultServiceMetrics?

    public init(store: IdentityStore, tokens: TokenService, throttle: FailureThrottle, events: any ServiceEventSink, publicURL: String, maxPageSize: Int,
                log: VaultSecurityLog? = nil) {
        self.log = log
        self.store = store
        self.tokens = tokens
        self.throttle = throttle
        self.events = events
        self.publicURL = publicURL
        self.maxPageSize = maxPageSize
    }

    /// The audience (resource) of the management API: the service's public URL.
    public var managementAudience: String { publicURL }
    var tenantID: String { store.tenant.tenantID }

    /// Every route, under `router`.
    public func register(on router: Router<VaultRequestContext>) {
        router.get(":tenant/v2.0/.well-known/openid-configuration") { _, context in
            let tenant = try context.parameters.require("tenant")
            guard tenant == tenantID else { throw TokenEndpointError(status: .badRequest, error: .tenantNotFound(tenant)) }
            return JSONResponse(value: OpenIDConfiguration.document(authority: publicURL, tenant: tenant))
        }
        router.get(":tenant/discovery/v2.0/keys") { _, context in
            let tenant = try context.parameters.require("tenant")
            guard tenant == tenantID else { throw TokenEndpointError(status: .badRequest, error: .tenantNotFound(tenant)) }
            return JSONResponse(value: tokens.keys.keySet(at: Date()))
        }
        router.post(":tenant/oauth2/v2.0/token") { request, context in
            try await token(request, context: context)
        }
        let management = router.group("v1.0").add(middleware: BearerAuthentication(routes: self, roles: [.administrator]))
        management.get("applications") { _, _ in
            JSONResponse(value: Listing(value: [try application()]))
        }
        management.get("applications/:appId") { _, context in
            try requireApplication(context)
            return JSONResponse(value: try application())
        }
        management.post("applications/:appId/addPassword") { request, context in
            try requireApplication(context)
            return try await addPassword(request, context: context)
        }
        management.post("applications/:appId/removePassword") { request, context in
            try requireApplication(context)
            return try await removePassword(request, context: context)
        }
        management.post("me/replaceSecret") { _, context in
            try await replaceOwnSecret(context: context)
        }
        if let log { SecurityLogRoutes(routes: self, log: log).register(on: router) }
    }

    // MARK: Token endpoint

    struct TokenResponse: Encodable, Sendable {
        var token_type = "Bearer"
        var expires_in: Int
        var ext_expires_in: Int
        var access_token: String
    }

    func token(_ request: Request, context: VaultRequestContext) async throws -> JSONResponse<TokenResponse> {
        let tenant = try context.parameters.require("tenant")
        guard tenant == tenantID else { throw TokenEndpointError(status: .badRequest, error: .tenantNotFound(tenant)) }
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true else {
            throw TokenEndpointError(status: .badRequest, error: .invalidRequest("AADSTS900561: The endpoint only accepts POST requests with Content-Type application/x-www-form-urlencoded."))
        }
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        let text = String(buffer: body)
        if let repeated = FormEncoding.repeatedNames(text).first {
            throw TokenEndpointError(status: .badRequest, error: .invalidRequest("AADSTS90014: The parameter '\(repeated)' is given more than once."))
        }
        let form = FormEncoding.decode(text)
        guard let grant = form["grant_type"] else { throw TokenEndpointError(status: .badRequest, error: .missingParameter("grant_type")) }
        guard grant == "client_credentials" else { throw TokenEndpointError(status: .badRequest, error: .unsupportedGrantType(grant)) }
        guard let clientID = form["client_id"], !clientID.isEmpty else { throw TokenEndpointError(status: .badRequest, error: .missingParameter("client_id")) }
        guard let scope = form["scope"] else { throw TokenEndpointError(status: .badRequest, error: .missingParameter("scope")) }
        guard let secret = form["client_secret"] else { throw TokenEndpointError(status: .unauthorized, error: .missingCredential()) }
        guard let audience = OpenIDConfiguration.resource(ofScope: scope) else { throw TokenEndpointError(status: .badRequest, error: .invalidScope(scope)) }
        let issued = try await exchange(clientID: clientID, secret: secret, audience: audience, scope: scope, tenant: tenant, address: context.remoteAddress)
        return JSONResponse(value: TokenResponse(expires_in: issued.expiresIn, ext_expires_in: issued.expiresIn, access_token: issued.token))
    }

    /// Client credentials → a 1-hour token for `audience`: the failure throttle, the identity
    /// store's check, and the security-log records (`authentication-failed`, `-throttled`,
    /// `token-issued`, the token leaving only once its record is durable). The token endpoint
    /// and the console's sign-in (ConsoleRoutes.swift) both call it.
    func exchange(clientID: String, secret: String, audience: String, scope: String, tenant: String, address: String) async throws -> AccessToken {
        let client = String(clientID.prefix(64))
        if let wait = throttle.retryAfter(clientID: client, address: address) {
            metrics?.throttleRefused(.token)
            metrics?.tokenFailed(.throttled)
            await recordRefusal(.authenticationThrottled(clientID: client, address: address))
            throw TokenEndpointError(status: .tooManyRequests, error: .throttled(retryAfter: wait), retryAfter: wait)
        }
        switch try store.authenticate(clientID: clientID, secret: secret) {
        case .refused(let failure):
            throttle.recordFailure(clientID: client, address: address)
            metrics?.tokenFailed(Self.metricReason(failure))
            await recordRefusal(.authenticationFailed(clientID: client, reason: failure.rawValue, address: address))
            switch failure {
            case .unknownClient: throw TokenEndpointError(status: .badRequest, error: .unknownClient(client, tenant: tenant))
            case .credentialExpired: throw TokenEndpointError(status: .unauthorized, error: .expiredSecret(client))
            case .wrongSecret, .credentialRevoked, .credentialNotYetValid: throw TokenEndpointError(status: .unauthorized, error: .invalidSecret(client))
            }
        case .authenticated(let principal):
            let issued: AccessToken
            do {
                issued = try tokens.issue(for: principal, audience: audience)
            } catch let error as IdentityError where error.code == .invalidAudience {
                throw TokenEndpointError(status: .badRequest, error: .invalidScope(scope))
            }
            // Fail closed: the token leaves only once its record is durable.
            do {
                try await events.record(.tokenIssued(principal: principal, audience: audience, address: address))
            } catch let error as EventNotRecorded {
                metrics?.tokenFailed(.notRecorded)
                throw TokenEndpointError.notRecorded(error)
            }
            metrics?.tokenIssued(role: principal.role.metricLabel)
            return issued
        }
    }

    /// The `reason` label of a refused sign-in.
    static func metricReason(_ failure: AuthenticationFailure) -> VaultServiceMetrics.TokenFailure {
        switch failure {
        case .unknownClient: .unknownClient
        case .wrongSecret: .badSecret
        case .credentialExpired: .expired
        case .credentialRevoked: .revoked
        case .credentialNotYetValid: .notYetValid
        }
    }

    // MARK: Service principal and its keys (Microsoft Graph shapes)

    /// A Graph `application` reduced to what this service has.
    struct Application: Encodable, Sendable {
        var id: String
        var appId: String
        var displayName = "cmk-vault service principal"
        var tenantId: String
        var passwordCredentials: [PasswordCredential]
    }

    struct Listing<Item: Encodable & Sendable>: Encodable, Sendable {
        var value: [Item]
    }

    func application() throws -> Application {
        let spn = store.tenant.servicePrincipalClientID
        return Application(id: spn, appId: spn, tenantId: tenantID, passwordCredentials: try store.servicePrincipalCredentials())
    }

    func requireApplication(_ context: VaultRequestContext) throws {
        let appID = try context.parameters.require("appId")
        guard appID == store.tenant.servicePrincipalClientID else {
            throw ServiceError(.notFound, "Request_ResourceNotFound", "Resource '\(String(appID.prefix(64)))' does not exist: this tenant's one application is the service principal \(store.tenant.servicePrincipalClientID).")
        }
    }

    struct AddPasswordRequest: Decodable {
        struct Credential: Decodable {
            var displayName: String?
            var endDateTime: String?
        }
        var passwordCredential: Credential?
    }

    func addPassword(_ request: Request, context: VaultRequestContext) async throws -> JSONResponse<PasswordCredential> {
        let body: AddPasswordRequest = try await StrictJSON.decode(AddPasswordRequest.self, from: request, context: context,
                                                                  allowed: ["passwordCredential": ["displayName", "endDateTime"]])
        guard let name = body.passwordCredential?.displayName else {
            throw ServiceError.badRequest("passwordCredential.displayName is required: a name of 1-16 characters, unique among the live keys")
        }
        var end: Date?
        if let text = body.passwordCredential?.endDateTime {
            guard let date = GraphDate.parse(text) else {
                throw ServiceError.badRequest("passwordCredential.endDateTime is not an ISO 8601 date and time such as 2027-12-05T00:00:00Z")
            }
            end = date
        }
        return JSONResponse(value: try await addCredential(name: name, end: end, by: context.principal, address: context.remoteAddress))
    }

    /// A new key of the service principal, recorded (`credential-added`) before it exists; its
    /// secret is in the result only. addPassword and the console's *Create key* call it.
    func addCredential(name: String, end: Date?, by principal: Principal?, address: String) async throws -> PasswordCredential {
        let now = Date()
        try checkNewKey(name: name, end: end, at: now)
        let keyID = IdentityStore.newKeyID()
        let event = ServiceEvent.credentialAdded(by: principal, keyID: keyID, name: name, end: end, address: address)
        return try await recordedChange(event) {
            try store.addServicePrincipalCredential(displayName: name, endDateTime: end, keyID: keyID, at: now)
        }
    }

    struct RemovePasswordRequest: Decodable {
        var keyId: String?
    }

    func removePassword(_ request: Request, context: VaultRequestContext) async throws -> Response {
        let body = try await StrictJSON.decode(RemovePasswordRequest.self, from: request, context: context, allowed: ["keyId": []])
        guard let keyID = body.keyId else { throw ServiceError.badRequest("keyId is required: the id of the key to revoke (GET /v1.0/applications lists them)") }
        try await revokeCredential(keyID: keyID, by: context.principal, address: context.remoteAddress)
        return Response(status: .noContent, headers: [.cacheControl: "no-store"])
    }

    /// Revokes a key of the service principal (`credential-revoked`); removePassword and the console call it.
    func revokeCredential(keyID: String, by principal: Principal?, address: String) async throws {
        guard try store.servicePrincipalCredentials().contains(where: { $0.keyId == keyID }) else {
            throw ServiceError(.notFound, "Request_ResourceNotFound",
                               "the service principal has no unrevoked key with keyId '\(String(keyID.prefix(64)))'; list the keys to see their ids")
        }
        try await recordedChange(.credentialRevoked(by: principal, keyID: keyID, address: address)) {
            try store.revokeServicePrincipalCredential(keyID: keyID)
        }
    }

    struct ReplacedSecret: Encodable, Sendable {
        var clientId: String
        var secretText: String
        var hint: String
    }

    func replaceOwnSecret(context: VaultRequestContext) async throws -> JSONResponse<ReplacedSecret> {
        guard let principal = context.principal else { throw ServiceError.forbidden("no caller") }
        let replaced = try await recordedChange(.administratorSecretReplaced(principal: principal, address: context.remoteAddress)) {
            try store.replaceAdministratorSecret(clientID: principal.clientID)
        }
        return JSONResponse(value: ReplacedSecret(clientId: replaced.clientID, secretText: replaced.secret.text, hint: replaced.secret.hint))
    }

    // MARK: Fail closed

    /// Records a refusal (failed sign-in, refused token, denied route). A refusal stands when its
    /// record cannot be written: the sink has reported that in the journal, and refusing is
    /// already the closed answer.
    func recordRefusal(_ event: ServiceEvent) async {
        _ = try? await events.record(event)
    }

    /// Appends the record of a change, then makes it: nothing changes unless its record is
    /// durable (503 otherwise). A change that fails after its record was appended gets a
    /// follow-up record, `<operation>-failed`, naming the record it cancels.
    @discardableResult
    func recordedChange<T>(_ event: ServiceEvent, _ change: () throws -> T) async throws -> T {
        let index: UInt64?
        do {
            index = try await events.record(event)
        } catch let error as EventNotRecorded {
            throw ServiceError.notRecorded(error)
        }
        do {
            return try change()
        } catch {
            let reason = (error as? IdentityError)?.code.description ?? "internal"
            await recordRefusal(event.failed(recordIndex: index, reason: reason))
            if let error = error as? IdentityError { throw Self.answer(error) }
            throw error
        }
    }

    /// What the store would refuse about a new key, checked before its record is appended so a
    /// refused request leaves no record: the name's syntax, the end date's range, and a live key
    /// of the same name (a concurrent request can still take it: then the store refuses and the
    /// record is followed by `credential-added-failed`).
    func checkNewKey(name: String, end: Date?, at now: Date) throws {
        do {
            try Names.checkKeyName(name)
        } catch {
            throw Self.answer(error)
        }
        do {
            _ = try IdentityStore.endDate(end, start: Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down)))
        } catch let error as IdentityError {
            throw Self.answer(error)
        }
        let taken = try store.servicePrincipalCredentials().contains { $0.endDateTime > now && $0.displayName.lowercased() == name.lowercased() }
        guard !taken else {
            throw ServiceError(.conflict, "Conflict",
                               "displayName '\(name)' is already the name of a live key of the service principal; choose another name, or revoke that key first")
        }
    }

    /// An identity-store refusal as an HTTP answer (its detail never holds a secret).
    static func answer(_ error: IdentityError) -> ServiceError {
        switch error.code {
        case .invalidName, .invalidEndDate, .invalidHost: ServiceError(.badRequest, "BadParameter", error.detail)
        case .duplicateName: ServiceError(.conflict, "Conflict", error.detail)
        case .administratorLimit: ServiceError(.conflict, "LimitReached", error.detail)
        case .notFound: ServiceError(.notFound, "Request_ResourceNotFound", error.detail)
        default: ServiceError(.internalServerError, "InternalError", "the identity store failed (\(error.code)); see the service's journal")
        }
    }
}
