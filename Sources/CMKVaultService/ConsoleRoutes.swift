import CMKEntra
import CMKIdentity
import CMKVaultLog
import Foundation
import HTTPTypes
import Hummingbird

/// The customer's console under `/console/` (docs/console.md): server-rendered pages over the same
/// domain calls the APIs use — the token exchange for sign-in, the identity store's recorded
/// changes for service-principal keys, the keys API (through ``KeyVaultRoutes``, with its records)
/// for the root key, and the security log.
///
/// | page | role |
/// |---|---|
/// | `/console/sign-in`, `/console/sign-out` | anyone (sign-out: signed in) |
/// | `/console/credentials` (create, revoke), `/console/access` | administrator |
/// | `/console/keys…` (versions, new version, expiry, enable/disable, rotation policy, pull), `/console/deleted-keys` (recover) | service principal |
/// | `/console/log` | administrator, service principal |
///
/// Pages of another role are not linked and answer 403 (with an `access-denied` record).
/// Every POST needs the session's CSRF token (constant-time comparison) and, when the browser
/// sends `Origin`, the service's own origin.
struct ConsoleRoutes: Sendable {
    let routes: VaultRoutes
    /// The keys API's routes (nil without a `vault` section: the key pages say so).
    let keys: KeyVaultRoutes?
    /// The hosts' version usage (nil: no reports; the guard then asks for the version id every time).
    let usage: (any HostUsageBook)?
    let sessions: ConsoleSessions

    static let cookieName = "cmk-console"

    /// Who is signed in, for one request.
    struct Signed: Sendable {
        var sessionID: String
        var csrf: String
        var principal: Principal
    }

    func register(on router: Router<VaultRequestContext>) {
        let console = router.group("console").add(middleware: ConsoleHeaders())
        console.get("") { _, _ in ConsolePage.redirect("/console/sign-in") }
        console.get("static/console.css") { _, _ in ConsolePage.staticFile(ConsolePage.stylesheet, type: "text/css; charset=utf-8") }
        console.get("static/copy.js") { _, _ in ConsolePage.staticFile(ConsolePage.copyScript, type: "text/javascript; charset=utf-8") }
        console.get("sign-in") { request, context in
            if let signed = signedIn(request) { return ConsolePage.redirect(Self.home(signed.principal.role)) }
            return signInPage(message: nil)
        }
        console.post("sign-in") { request, context in try await signIn(request, context: context) }
        console.post("sign-out") { request, context in
            try await post(request, context: context, roles: Set(Role.allCases)) { signed, _ in
                sessions.close(signed.sessionID)
                return ConsolePage.redirect("/console/sign-in", headers: [.setCookie: Self.cookie("", maxAge: 0)])
            }
        }
        registerAdministratorPages(on: console)
        registerKeyPages(on: console)
        console.get("log") { request, context in
            try await page(request, context: context, roles: [.administrator, .servicePrincipal]) { signed in try logPage(request, signed: signed) }
        }
    }

    static func home(_ role: Role) -> String { role == .administrator ? "/console/credentials" : "/console/keys" }

    static func cookie(_ value: String, maxAge: Int) -> String {
        "\(cookieName)=\(value); Max-Age=\(maxAge); Path=/console; HttpOnly; Secure; SameSite=Strict"
    }

    // MARK: Sign-in

    func signInPage(message: String?, status: HTTPResponse.Status = .ok) -> Response {
        let error = message.map { "<p class=\"warning\" role=\"alert\">\(ConsolePage.escape($0))</p>" } ?? ""
        return ConsolePage(title: "Sign in", body: """
            \(error)<p>Sign in with a CMK administrator's client id and secret, or with the service principal's client id and one of its keys.</p>
            <form method="post" action="/console/sign-in">
            <label for="client_id">Client id</label><input type="text" id="client_id" name="client_id" autocomplete="username" required>
            <label for="client_secret">Secret</label><input type="password" id="client_secret" name="client_secret" autocomplete="current-password" required>
            <p><button type="submit">Sign in</button></p></form>
            """).response(status: status)
    }

    func signIn(_ request: Request, context: VaultRequestContext) async throws -> Response {
        guard sameOrigin(request) else { return forbidden("The form came from another site; open the console at \(routes.publicURL)/console/ and sign in there.") }
        let form = try await Self.form(request, context: context)
        guard let clientID = form["client_id"], !clientID.isEmpty, let secret = form["client_secret"], !secret.isEmpty else {
            return signInPage(message: "Enter the client id and the secret.", status: .badRequest)
        }
        let audience = routes.managementAudience
        let issued: AccessToken
        do {
            issued = try await routes.exchange(clientID: clientID, secret: secret, audience: audience, scope: audience + "/.default",
                                               tenant: routes.tenantID, address: context.remoteAddress)
        } catch let error as TokenEndpointError {
            let text = error.retryAfter.map { "Too many failed sign-ins; try again in \($0) seconds." }
                ?? "The client id or the secret is wrong, or the key is revoked or expired (\(error.error.description.prefix(12)))."
            return signInPage(message: text, status: error.status)
        }
        guard issued.claims.roles.contains(where: { $0 == Role.administrator.rawValue || $0 == Role.servicePrincipal.rawValue }) else {
            return signInPage(message: "Platform identities have no console; sign in as a CMK administrator or the service principal.", status: .forbidden)
        }
        let expires = Date(timeIntervalSince1970: TimeInterval(issued.claims.exp))
        let opened = sessions.open(token: issued.token, expires: expires)
        let role: Role = issued.claims.roles.contains(Role.administrator.rawValue) ? .administrator : .servicePrincipal
        return ConsolePage.redirect(Self.home(role), headers: [.setCookie: Self.cookie(opened.id, maxAge: max(0, Int(expires.timeIntervalSinceNow)))])
    }

    // MARK: Sessions, roles, CSRF

    /// The signed-in caller: a live session whose token still verifies (its credential still live).
    func signedIn(_ request: Request) -> Signed? {
        guard let id = Self.cookieValue(request), let session = sessions.session(id),
              case .valid(let token)? = try? routes.tokens.verify(session.token, audience: routes.managementAudience) else { return nil }
        return Signed(sessionID: id, csrf: session.csrf, principal: token.principal)
    }

    static func cookieValue(_ request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == cookieName { return String(parts[1]) }
            }
        }
        return nil
    }

    /// A GET page for `roles`: the sign-in page when nobody is signed in, 403 for another role.
    func page(_ request: Request, context: VaultRequestContext, roles: Set<Role>, _ body: (Signed) async throws -> ConsolePage) async throws -> Response {
        guard let signed = signedIn(request) else { return ConsolePage.redirect("/console/sign-in") }
        guard roles.contains(signed.principal.role) else { return await denied(request, signed: signed, context: context) }
        var page = try await body(signed)
        page.role = signed.principal.role
        page.csrf = signed.csrf
        return page.response()
    }

    /// A POST for `roles`: signed in, the right role, the same origin, and the session's CSRF token.
    func post(_ request: Request, context: VaultRequestContext, roles: Set<Role>,
              _ body: (Signed, [String: String]) async throws -> Response) async throws -> Response {
        guard let signed = signedIn(request) else { return ConsolePage.redirect("/console/sign-in") }
        guard roles.contains(signed.principal.role) else { return await denied(request, signed: signed, context: context) }
        guard sameOrigin(request) else { return forbidden("The form came from another site; nothing was done.") }
        let form = try await Self.form(request, context: context)
        guard let token = form["csrf"], ConsoleSessions.constantTimeEqual(token, signed.csrf) else {
            return forbidden("The form's CSRF token is missing or wrong (an old page, or a form from elsewhere); nothing was done. Reload the page and try again.")
        }
        return try await body(signed, form)
    }

    func denied(_ request: Request, signed: Signed, context: VaultRequestContext) async -> Response {
        await routes.recordRefusal(.accessDenied(principal: signed.principal, route: request.method.rawValue + " " + request.uri.path, address: context.remoteAddress))
        var page = ConsolePage(title: "Not allowed", body: "<p>Your role (\(ConsolePage.escape(signed.principal.role.rawValue))) may not open this page.</p>"
                               + "<p><a href=\"\(Self.home(signed.principal.role))\">Back to your console</a></p>")
        page.role = signed.principal.role
        page.csrf = signed.csrf
        return page.response(status: .forbidden)
    }

    func forbidden(_ message: String) -> Response {
        ConsolePage(title: "Refused", body: "<p class=\"warning\" role=\"alert\">\(ConsolePage.escape(message))</p><p><a href=\"/console/\">Console</a></p>")
            .response(status: .forbidden)
    }

    /// A form from the console's own pages: `Sec-Fetch-Site`, when the browser sends it, must be
    /// `same-origin`; `Origin`, when sent, the service's own or `null` (what a browser sends under
    /// `Referrer-Policy: no-referrer`). The session's CSRF token is checked besides.
    func sameOrigin(_ request: Request) -> Bool {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site != "same-origin" { return false }
        guard let origin = request.headers[.origin] else { return true }
        return origin == routes.publicURL || origin == "null"
    }

    /// The urlencoded form body; a repeated field is refused.
    static func form(_ request: Request, context: VaultRequestContext) async throws -> [String: String] {
        let body = try await request.body.collect(upTo: min(context.maxUploadSize, 64 * 1024))
        let text = String(buffer: body)
        if let repeated = FormEncoding.repeatedNames(text).first {
            throw ServiceError.badRequest("the form field '\(String(repeated.prefix(32)))' is given more than once")
        }
        return FormEncoding.decode(text)
    }
}

/// The console's headers on every answer of its routes, errors included: a refusal thrown by a
/// domain call becomes a page (its message, never a secret) with the same headers.
struct ConsoleHeaders: RouterMiddleware {
    typealias Context = VaultRequestContext

    func handle(_ request: Request, context: VaultRequestContext, next: (Request, VaultRequestContext) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as ServiceError {
            response = ConsolePage(title: "Refused", body: "<p class=\"warning\" role=\"alert\">\(ConsolePage.escape(error.message))</p><p><a href=\"/console/\">Console</a></p>")
                .response(status: error.status)
        }
        for field in ConsolePage.securityHeaders { response.headers[field.name] = field.value }
        return response
    }
}
