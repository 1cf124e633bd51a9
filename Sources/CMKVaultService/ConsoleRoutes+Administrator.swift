import CMKIdentity
import CMKVaultLog
import Foundation
import Hummingbird

/// The administrator's pages: the service principal's keys (create, list, revoke) and who has
/// access; and the security log, shared with the service principal.
extension ConsoleRoutes {
    func registerAdministratorPages(on console: RouterGroup<VaultRequestContext>) {
        console.get("credentials") { request, context in
            try await page(request, context: context, roles: [.administrator]) { signed in try credentialsPage(signed: signed, message: nil) }
        }
        console.post("credentials") { request, context in
            try await post(request, context: context, roles: [.administrator]) { signed, form in
                let name = form["name"] ?? ""
                do {
                    let created = try await routes.addCredential(name: name, end: nil, by: signed.principal, address: context.remoteAddress)
                    var page = secretPage(created)
                    page.role = signed.principal.role
                    page.csrf = signed.csrf
                    return page.response()
                } catch let error as ServiceError {
                    var page = try credentialsPage(signed: signed, message: error.message)
                    page.role = signed.principal.role
                    page.csrf = signed.csrf
                    return page.response(status: error.status)
                }
            }
        }
        console.post("credentials/revoke") { request, context in
            try await post(request, context: context, roles: [.administrator]) { signed, form in
                try await routes.revokeCredential(keyID: form["keyId"] ?? "", by: signed.principal, address: context.remoteAddress)
                return ConsolePage.redirect("/console/credentials")
            }
        }
        console.get("access") { request, context in
            try await page(request, context: context, roles: [.administrator]) { _ in try accessPage() }
        }
    }

    func credentialsPage(signed: Signed, message: String?) throws -> ConsolePage {
        let usage = Dictionary(try routes.store.servicePrincipalCredentialUsage().map { ($0.keyId, $0.lastUsed) }, uniquingKeysWith: { first, _ in first })
        let rows = try routes.store.servicePrincipalCredentials().map { key in
            [ConsolePage.escape(key.keyId), ConsolePage.escape(key.displayName), ConsolePage.time(key.startDateTime), ConsolePage.time(key.endDateTime),
             ConsolePage.time(usage[key.keyId] ?? nil),
             ConsolePage.form("/console/credentials/revoke", csrf: signed.csrf,
                              fields: "<input type=\"hidden\" name=\"keyId\" value=\"\(ConsolePage.escape(key.keyId))\">",
                              button: "Revoke \(key.displayName)", danger: true)]
        }
        let error = message.map { "<p class=\"warning\" role=\"alert\">\(ConsolePage.escape($0))</p>" } ?? ""
        return ConsolePage(title: "Service-principal keys", body: """
            \(error)<p>The service principal (client id <code>\(ConsolePage.escape(routes.store.tenant.servicePrincipalClientID))</code>) signs in with one of these keys. \
            A new key's secret is shown once, right after it is made; only a hash is kept.</p>
            \(ConsolePage.table(caption: "Keys", headers: ["Id", "Name", "Start", "End", "Last use", "Revoke"], rows: rows))
            <h2>Create a key</h2>
            <form method="post" action="/console/credentials"><input type="hidden" name="csrf" value="\(ConsolePage.escape(signed.csrf))">
            <label for="name">Name (1-16 characters, unique among the live keys)</label>
            <input type="text" id="name" name="name" maxlength="16" required>
            <button type="submit">Create key</button></form>
            """)
    }

    func secretPage(_ created: PasswordCredential) -> ConsolePage {
        ConsolePage(title: "Key created", body: """
            <p class="notice" role="status">The key <strong>\(ConsolePage.escape(created.displayName))</strong> (id <code>\(ConsolePage.escape(created.keyId))</code>) \
            was created. Copy its secret now: it is shown this once and never again.</p>
            <label for="secret">Secret</label>
            <input type="text" id="secret" readonly value="\(ConsolePage.escape(created.secretText ?? ""))">
            <button type="button" data-copy="secret">Copy</button>
            <p>Client id: <code id="client-id">\(ConsolePage.escape(routes.store.tenant.servicePrincipalClientID))</code>. Ends \(ConsolePage.time(created.endDateTime)).</p>
            <p><a href="/console/credentials">Back to the keys</a></p>
            <script src="/console/static/copy.js"></script>
            """)
    }

    func accessPage() throws -> ConsolePage {
        guard let log = routes.log else { return ConsolePage(title: "Who has access", body: "<p>This service has no security log.</p>") }
        let access = try SecurityLogRoutes(routes: routes, log: log).access()
        let administrators = access.administrators.map { [ConsolePage.escape($0.name), "<code>\(ConsolePage.escape($0.clientId))</code>", ConsolePage.time($0.created), ConsolePage.time($0.lastUsed)] }
        let keys = access.servicePrincipal.passwordCredentials.map {
            [ConsolePage.escape($0.displayName), "<code>\(ConsolePage.escape($0.keyId))</code>", ConsolePage.time($0.startDateTime), ConsolePage.time($0.endDateTime), ConsolePage.time($0.lastUsed)]
        }
        let platforms = access.platformIdentities.map { [ConsolePage.escape($0.host), "<code>\(ConsolePage.escape($0.clientId))</code>", ConsolePage.time($0.created), ConsolePage.time($0.lastUsed)] }
        return ConsolePage(title: "Who has access", body: """
            <p>Everyone who can touch the customer's key right now, in tenant <code>\(ConsolePage.escape(access.tenantId))</code>.</p>
            \(ConsolePage.table(caption: "CMK administrators (manage the service principal's keys, read the log)", headers: ["Name", "Client id", "Added", "Last use"], rows: administrators))
            \(ConsolePage.table(caption: "Service principal \(access.servicePrincipal.appId): its keys (manage the root key)", headers: ["Name", "Key id", "Start", "End", "Last use"], rows: keys))
            \(ConsolePage.table(caption: "Platform identities (hosts: read key versions, wrap and unwrap)", headers: ["Host", "Client id", "Added", "Last use"], rows: platforms))
            """)
    }

    // MARK: Security log

    func logPage(_ request: Request, signed: Signed) throws -> ConsolePage {
        guard let log = routes.log else { return ConsolePage(title: "Security log", body: "<p>This service has no security log.</p>") }
        let query = try SecurityLogRoutes.query(request, allowed: ["from", "to", "actor", "operation", "start"])
        let filter = { (name: String) in query[name].flatMap { $0.isEmpty ? nil : $0 } }
        let from = try filter("from").map { try SecurityLogRoutes.time($0, "from") }
        let to = try filter("to").map { try SecurityLogRoutes.time($0, "to") }
        let start = try query["start"].map { _ in try SecurityLogRoutes.number(query, "start") } ?? 0
        let pageSize = min(50, routes.maxPageSize)
        let page = try log.records(.init(from: from, to: to, actor: filter("actor"), operation: filter("operation"), startIndex: start, limit: pageSize))
        let rows = try page.leaves.map { entry in
            let record = try SecurityLogRecord(leaf: entry.leaf)
            let details = record.details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            return [String(entry.index), ConsolePage.escape(record.time), ConsolePage.escape(record.operation),
                    ConsolePage.escape(record.actor ?? "—") + (record.role.map { " (\(ConsolePage.escape($0)))" } ?? ""),
                    ConsolePage.escape(record.address), ConsolePage.escape(details)]
        }
        var next = ""
        if let nextIndex = page.nextIndex {
            var components = URLComponents()
            components.queryItems = query.filter { $0.key != "start" }.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
                + [URLQueryItem(name: "start", value: String(nextIndex))]
            next = "<p><a href=\"/console/log?\(ConsolePage.escape(components.percentEncodedQuery ?? ""))\">Next page</a></p>"
        }
        let checkpoint = try log.checkpoint()
        let value = { (name: String) in ConsolePage.escape(query[name] ?? "") }
        return ConsolePage(title: "Security log", body: """
            <form method="get" action="/console/log">
            <label for="from">From (RFC 3339, e.g. 2026-12-05T07:00:00Z)</label><input type="text" id="from" name="from" value="\(value("from"))">
            <label for="to">To</label><input type="text" id="to" name="to" value="\(value("to"))">
            <label for="actor">Actor (client id)</label><input type="text" id="actor" name="actor" value="\(value("actor"))">
            <label for="operation">Operation (e.g. key-updated)</label><input type="text" id="operation" name="operation" value="\(value("operation"))">
            <button type="submit">Filter</button></form>
            \(ConsolePage.table(caption: "Records from index \(start)", headers: ["Index", "Time", "Operation", "Actor", "Address", "Details"], rows: rows))
            \(next)
            <h2>Latest signed checkpoint</h2>
            <p>Signed \(ConsolePage.time(checkpoint.time)); verifier key <code>\(ConsolePage.escape(log.verifier.verifierKey))</code>.</p>
            <pre>\(ConsolePage.escape(checkpoint.note))</pre>
            <h2>Verify it offline</h2>
            <ol><li>Keep this checkpoint (save it as <code>checkpoint.txt</code>) and the verifier key above, pinned once.</li>
            <li>Fetch the records with <code>GET /v1.0/securityLogs/records</code> and the proofs with <code>GET /v1.0/securityLogs/proofs/inclusion</code> and <code>…/consistency</code> (docs/vault-service.md, "Security Logs API").</li>
            <li>Run an independent verifier (for example <code>tlog_verify.py</code> from the project's tests, docs/transparency.md): it checks the note's Ed25519 signature against the pinned key, that the records hash to the signed root, and that a later checkpoint is consistent with this one.</li></ol>
            """)
    }
}
