import CMKIdentity
import Foundation
import HTTPTypes
import Hummingbird

/// The service principal's pages: the root keys and their versions (new version, expiry,
/// enable/disable with the in-use guard, rotation policy), pull behind a confirmation, and
/// deleted keys with Recover.
extension ConsoleRoutes {
    func registerKeyPages(on console: RouterGroup<VaultRequestContext>) {
        let sp: Set<Role> = [.servicePrincipal]
        registerKeyCreation(on: console)
        registerRotationPolicyPage(on: console)
        console.get("keys") { request, context in
            try await page(request, context: context, roles: sp) { signed in try await keyListPage(signed, context: context) }
        }
        console.get("keys/:name") { request, context in
            try await page(request, context: context, roles: sp) { signed in
                try await keyPage(signed, context: context, name: try context.parameters.require("name"), message: nil)
            }
        }
        console.post("keys/:name/versions") { request, context in
            try await post(request, context: context, roles: sp) { signed, form in
                let name = try context.parameters.require("name")
                let kty = form["kty"] == "RSA" ? "RSA" : "RSA-HSM"
                let size = Int(form["size"] ?? "") ?? 2048
                let answer = try await api(signed, context).call(.post, "/keys/\(Self.pathName(name))/create", body: ["kty": kty, "key_size": size])
                return try await afterChange(answer, name: name, signed: signed, context: context)
            }
        }
        console.post("keys/:name/:version/expiry") { request, context in
            try await post(request, context: context, roles: sp) { signed, form in try await setExpiry(signed, form: form, context: context) }
        }
        console.post("keys/:name/:version/enabled") { request, context in
            try await post(request, context: context, roles: sp) { signed, form in try await setEnabled(signed, form: form, context: context) }
        }
        console.get("keys/:name/delete") { request, context in
            try await page(request, context: context, roles: sp) { signed in pullPage(signed, name: try context.parameters.require("name")) }
        }
        console.post("keys/:name/delete") { request, context in
            try await post(request, context: context, roles: sp) { signed, _ in
                let name = try context.parameters.require("name")
                let answer = try await api(signed, context).call(.delete, "/keys/\(Self.pathName(name))")
                guard answer.ok else { return try await afterChange(answer, name: name, signed: signed, context: context) }
                return ConsolePage.redirect("/console/deleted-keys")
            }
        }
        console.get("deleted-keys") { request, context in
            try await page(request, context: context, roles: sp) { signed in try await deletedPage(signed, context: context, message: nil) }
        }
        console.post("deleted-keys/:name/recover") { request, context in
            try await post(request, context: context, roles: sp) { signed, _ in
                let name = try context.parameters.require("name")
                let answer = try await api(signed, context).call(.post, "/deletedkeys/\(Self.pathName(name))/recover")
                guard answer.ok else {
                    var page = try await deletedPage(signed, context: context, message: answer.message)
                    page.role = signed.principal.role
                    page.csrf = signed.csrf
                    return page.response(status: .init(code: answer.status))
                }
                return ConsolePage.redirect("/console/keys/\(Self.pathName(name))")
            }
        }
    }

    func api(_ signed: Signed, _ context: VaultRequestContext) throws -> ConsoleKeysAPI {
        guard let keys else { throw ServiceError(.notFound, "NotFound", "this cmk-vault has no vault section: it keeps no root key") }
        return ConsoleKeysAPI(keys: keys, principal: signed.principal, address: context.remoteAddress, maxUploadSize: context.maxUploadSize)
    }

    /// A key name for a path: the keys API's names are `[0-9a-zA-Z-]`; anything else is dropped.
    static func pathName(_ name: String) -> String {
        String(name.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "-" }.map(Character.init)).prefix(127).description
    }

    /// After a change: back to the key's page, or the page with the API's refusal.
    func afterChange(_ answer: ConsoleKeysAPI.Answer, name: String, signed: Signed, context: VaultRequestContext) async throws -> Response {
        if answer.ok { return ConsolePage.redirect("/console/keys/\(Self.pathName(name))") }
        var page = try await keyPage(signed, context: context, name: name, message: answer.message)
        page.role = signed.principal.role
        page.csrf = signed.csrf
        return page.response(status: .init(code: answer.status))
    }

    // MARK: Pages

    func keyListPage(_ signed: Signed, context: VaultRequestContext) async throws -> ConsolePage {
        let answer = try await api(signed, context).call(.get, "/keys")
        let items = answer.json?["value"] as? [[String: Any]] ?? []
        let rows = items.compactMap { ConsoleKeysAPI.name(ofID: $0["kid"]) }.map { name in
            ["<a href=\"/console/keys/\(Self.pathName(name))\">\(ConsolePage.escape(name))</a>"]
        }
        return ConsolePage(title: "Keys", body: """
            \(ConsolePage.table(caption: "Root keys", headers: ["Name"], rows: rows))
            <h2>Create a key</h2>
            <form method="post" action="/console/keys/new"><input type="hidden" name="csrf" value="\(ConsolePage.escape(signed.csrf))">
            <label for="name">Name (letters, digits and dashes)</label><input type="text" id="name" name="name" required pattern="[0-9A-Za-z-]{1,127}">
            \(Self.keyTypeFields)
            <button type="submit">Create key</button></form>
            <p>Pulled a key? <a href="/console/deleted-keys">Deleted keys</a> lists what can be recovered.</p>
            """)
    }

    static let keyTypeFields = """
        <label for="kty">Type</label><select id="kty" name="kty"><option value="RSA-HSM" selected>RSA-HSM</option><option value="RSA">RSA</option></select>
        <label for="size">Size</label><select id="size" name="size"><option value="2048" selected>2048</option><option value="3072">3072</option><option value="4096">4096</option></select>
        """

    func keyPage(_ signed: Signed, context: VaultRequestContext, name: String, message: String?) async throws -> ConsolePage {
        let api = try api(signed, context)
        let path = "/keys/\(Self.pathName(name))"
        let current = try await api.call(.get, path)
        guard current.ok, let currentVersion = ConsoleKeysAPI.Version(current.json ?? [:]) else {
            return ConsolePage(title: "Key \(name)", body: "<p class=\"warning\" role=\"alert\">\(ConsolePage.escape(message ?? current.message))</p><p><a href=\"/console/keys\">Keys</a> · <a href=\"/console/deleted-keys\">Deleted keys</a></p>")
        }
        let listed = try await api.call(.get, path + "/versions")
        let versions = (listed.json?["value"] as? [[String: Any]] ?? []).compactMap(ConsoleKeysAPI.Version.init)
            .sorted { ($0.created ?? .distantPast) > ($1.created ?? .distantPast) }
        let usages = try usage?.usage(of: name, at: Date())
        let csrf = signed.csrf
        let rows = versions.map { version -> [String] in
            let base = "/console/keys/\(Self.pathName(name))/\(ConsolePage.escape(version.id))"
            let expiry = ConsolePage.form(base + "/expiry", csrf: csrf, fields: """
                <label for="exp-\(version.id)">Expiry (UTC, type or pick)</label>\
                <input type="datetime-local" step="1" id="exp-\(version.id)" name="expires" value="\(Self.localTime(version.expires))">
                """, button: "Set expiry") + ConsolePage.form(base + "/expiry", csrf: csrf, fields: "<input type=\"hidden\" name=\"now\" value=\"1\">", button: "Expire now")
            let toggle = version.enabled
                ? ConsolePage.form(base + "/enabled", csrf: csrf, fields: "<input type=\"hidden\" name=\"enabled\" value=\"false\">", button: "Disable", danger: true)
                : ConsolePage.form(base + "/enabled", csrf: csrf, fields: "<input type=\"hidden\" name=\"enabled\" value=\"true\">", button: "Enable")
            return ["<code>\(ConsolePage.escape(version.id))</code>" + (version.id == currentVersion.id ? " (current)" : ""),
                    ConsolePage.time(version.created), version.enabled ? "yes" : "no", ConsolePage.time(version.expires),
                    Self.usageText(version.id, usages), expiry + toggle]
        }
        let policy = try await api.call(.get, path + "/rotationpolicy")
        let error = message.map { "<p class=\"warning\" role=\"alert\">\(ConsolePage.escape($0))</p>" } ?? ""
        return ConsolePage(title: "Key \(name)", body: """
            \(error)\(ConsolePage.table(caption: "Versions, newest first", headers: ["Version", "Created", "Enabled", "Expires", "In use", "Actions"], rows: rows))
            <h2>New version</h2>
            <p>Makes a new current version; every host rebinds its accounts to it at its next pass. Then set the old version's expiry.</p>
            <form method="post" action="/console/keys/\(Self.pathName(name))/versions"><input type="hidden" name="csrf" value="\(ConsolePage.escape(csrf))">
            \(Self.keyTypeFields)<button type="submit">New version</button></form>
            <h2>Rotation policy</h2>
            \(Self.policyText(policy.json))
            <p><a href="/console/keys/\(Self.pathName(name))/rotation-policy">Change the rotation policy…</a></p>
            <h2>Pull</h2>
            <p><a href="/console/keys/\(Self.pathName(name))/delete">Pull (delete) this key…</a></p>
            """)
    }

    static func usageText(_ version: String, _ usages: [KeyVersionUsage]?) -> String {
        guard let usages else { return "unknown: no usage reports" }
        guard let usage = usages.first(where: { $0.version == version }), usage.inUse else { return "<span class=\"safe\">safe to disable</span>" }
        let stale = usage.staleHosts.isEmpty ? "" : " (stale report: \(ConsolePage.escape(usage.staleHosts.joined(separator: ", "))))"
        return "<span class=\"inuse\">in use by \(usage.accounts) account\(usage.accounts == 1 ? "" : "s") on \(usage.hosts.count) host\(usage.hosts.count == 1 ? "" : "s")</span>\(stale)"
    }

    static func policyText(_ json: [String: Any]?) -> String {
        guard let json else { return "<p>No rotation policy could be read.</p>" }
        let actions = (json["lifetimeActions"] as? [[String: Any]] ?? []).map { action -> String in
            let type = (action["action"] as? [String: Any])?["type"] as? String ?? "?"
            let trigger = action["trigger"] as? [String: Any] ?? [:]
            let when = (trigger["timeAfterCreate"] as? String).map { "\($0) after creation" } ?? (trigger["timeBeforeExpiry"] as? String).map { "\($0) before expiry" } ?? "?"
            return "<li>\(ConsolePage.escape(type)): \(ConsolePage.escape(when))</li>"
        }.joined()
        let attributes = json["attributes"] as? [String: Any] ?? [:]
        let expiry = (attributes["expiryTime"] as? String).map { "New versions expire \(ConsolePage.escape($0)) after creation." } ?? "New versions do not expire."
        let changed = ConsoleKeysAPI.Version.date(attributes["updated"]).map { " Last changed \(ConsolePage.time($0))." } ?? " Never changed: the default policy."
        return "<ul>\(actions)</ul><p>\(expiry)\(changed)</p>"
    }

    func pullPage(_ signed: Signed, name: String) -> ConsolePage {
        ConsolePage(title: "Pull key \(name)?", body: """
            <div class="warning" role="alert"><p>Deleting <strong>\(ConsolePage.escape(name))</strong> pulls the customer's key:</p>
            <ul><li>every platform host goes dark at its next pass — within its probe interval, or at once where key events are delivered;</li>
            <li>their accounts are suspended and refuse reads until the key is recovered;</li>
            <li>the key stays recoverable under <a href="/console/deleted-keys">Deleted keys</a> for the vault's retention period.</li></ul></div>
            \(ConsolePage.form("/console/keys/\(Self.pathName(name))/delete", csrf: signed.csrf, button: "Pull \(name)", danger: true))
            <p><a href="/console/keys/\(Self.pathName(name))">Cancel</a></p>
            """)
    }

    func deletedPage(_ signed: Signed, context: VaultRequestContext, message: String?) async throws -> ConsolePage {
        let answer = try await api(signed, context).call(.get, "/deletedkeys")
        let items = answer.json?["value"] as? [[String: Any]] ?? []
        let rows = items.compactMap { item -> [String]? in
            guard let name = ConsoleKeysAPI.name(ofID: item["recoveryId"] ?? item["kid"]) else { return nil }
            let deleted = ConsoleKeysAPI.Version.date(item["deletedDate"]), purge = ConsoleKeysAPI.Version.date(item["scheduledPurgeDate"])
            return [ConsolePage.escape(name), ConsolePage.time(deleted), ConsolePage.time(purge),
                    ConsolePage.form("/console/deleted-keys/\(Self.pathName(name))/recover", csrf: signed.csrf, button: "Recover \(name)")]
        }
        let error = message.map { "<p class=\"warning\" role=\"alert\">\(ConsolePage.escape($0))</p>" } ?? ""
        return ConsolePage(title: "Deleted keys", body: """
            \(error)<p>Recovering a key brings it back with all its versions; every host resumes at its next pass.</p>
            \(ConsolePage.table(caption: "Deleted keys", headers: ["Name", "Deleted", "Purged after", "Recover"], rows: rows))
            """)
    }

    /// `yyyy-MM-ddTHH:mm:ss` in UTC, as a datetime-local field shows it.
    static func localTime(_ date: Date?) -> String {
        guard let date else { return "" }
        return String(GraphDate.string(date).prefix(19))
    }
}
