import CMKIdentity
import Foundation
import Hummingbird

/// The guard (docs/console.md, "The guard"): disabling a version, or setting its expiry to now or
/// earlier, while the hosts' usage reports say accounts still use it, first shows a warning that
/// names the hosts and account counts, and goes ahead only when the user types the version id.
/// Without any usage book the console cannot know, so it asks every time.
extension ConsoleRoutes {
    func setExpiry(_ signed: Signed, form: [String: String], context: VaultRequestContext) async throws -> Response {
        let name = try context.parameters.require("name"), version = try context.parameters.require("version")
        let now = Date()
        let expires: Date
        if form["now"] == "1" {
            expires = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        } else if let text = form["expires"], let typed = Self.parseTyped(text) {
            expires = typed
        } else {
            return try await afterChange(.init(status: 400, json: ["error": ["message": "Type the expiry as 2027-06-30T12:00 or 2027-06-30T12:00:00 (UTC), or press Expire now."]]),
                                         name: name, signed: signed, context: context)
        }
        if expires <= now, let warning = try guardWarning(name: name, version: version, form: form, signed: signed,
                                                          action: "/expiry", what: "Expiring \(version) now disables it for unwrapping") {
            return warning
        }
        let answer = try await api(signed, context).call(.patch, "/keys/\(Self.pathName(name))/\(Self.pathName(version))",
                                                         body: ["attributes": ["exp": Int(expires.timeIntervalSince1970)]])
        return try await afterChange(answer, name: name, signed: signed, context: context)
    }

    func setEnabled(_ signed: Signed, form: [String: String], context: VaultRequestContext) async throws -> Response {
        let name = try context.parameters.require("name"), version = try context.parameters.require("version")
        let enabled = form["enabled"] == "true"
        if !enabled, let warning = try guardWarning(name: name, version: version, form: form, signed: signed,
                                                    action: "/enabled", what: "Disabling \(version)") {
            return warning
        }
        let answer = try await api(signed, context).call(.patch, "/keys/\(Self.pathName(name))/\(Self.pathName(version))",
                                                         body: ["attributes": ["enabled": enabled]])
        return try await afterChange(answer, name: name, signed: signed, context: context)
    }

    /// The warning page (409) when `version` is in use (or usage is unknown) and the form does not
    /// carry the version id typed into `confirm`; nil to go ahead.
    func guardWarning(name: String, version: String, form: [String: String], signed: Signed, action: String, what: String) throws -> Response? {
        let usages = try usage?.usage(of: name, at: Date())
        guard Self.needsConfirmation(version: version, usages: usages, typed: form["confirm"]) else { return nil }
        let use = usages?.first { $0.version == version && $0.inUse }
        var hosts = "<p>This service has no usage reports from the hosts: it cannot tell whether accounts still use this version.</p>"
        if let use {
            let perHost = (try usage?.reports() ?? []).filter { $0.key == name.lowercased() }.compactMap { report -> String? in
                guard let count = report.versions.first(where: { $0.version == version }), count.accounts > 0 || count.deks > 0 else { return nil }
                let stale = report.isStale(at: Date()) ? " (report stale)" : ""
                return "<li>\(ConsolePage.escape(report.host)): \(count.accounts) account\(count.accounts == 1 ? "" : "s")\(stale)</li>"
            }.joined()
            hosts = "<p>It is in use by \(use.accounts) account\(use.accounts == 1 ? "" : "s") on \(use.hosts.count) host\(use.hosts.count == 1 ? "" : "s"):</p><ul>\(perHost)</ul>"
        }
        let kept = form.filter { ["expires", "now", "enabled"].contains($0.key) }.sorted { $0.key < $1.key }
            .map { "<input type=\"hidden\" name=\"\(ConsolePage.escape($0.key))\" value=\"\(ConsolePage.escape($0.value))\">" }.joined()
        let wrong = form["confirm"] != nil ? "<p role=\"alert\">The id you typed is not this version's; nothing was done.</p>" : ""
        var page = ConsolePage(title: "Version \(version) is still in use", body: """
            <div class="warning" role="alert"><p><strong>DO NOT DISABLE A KEY VERSION THAT IS STILL IN USE.</strong> \(ConsolePage.escape(what)) \
            makes every account still bound to it unreadable until the version is enabled again.</p>\(hosts)
            <p>Wait until every host has rebound its accounts to the current version (the next pass after a new version), then this version shows "safe to disable".</p></div>
            \(wrong)\(ConsolePage.form("/console/keys/\(Self.pathName(name))/\(ConsolePage.escape(version))\(action)", csrf: signed.csrf,
                               fields: kept + "<label for=\"confirm\">Type the version id to go ahead anyway</label><input type=\"text\" id=\"confirm\" name=\"confirm\" autocomplete=\"off\" required>",
                               button: "I understand: go ahead", danger: true))
            <p><a href="/console/keys/\(Self.pathName(name))">Cancel</a></p>
            """)
        page.role = signed.principal.role
        page.csrf = signed.csrf
        return page.response(status: .conflict)
    }

    /// Whether turning `version` off needs the typed id: some host's report says it is in use, or
    /// there is no usage book to ask — unless `typed` is the version id.
    static func needsConfirmation(version: String, usages: [KeyVersionUsage]?, typed: String?) -> Bool {
        if let typed, ConsoleSessions.constantTimeEqual(typed.trimmingCharacters(in: .whitespaces), version) { return false }
        guard let usages else { return true }
        return usages.contains { $0.version == version && $0.inUse }
    }

    /// A typed date and time, UTC: `YYYY-MM-DDTHH:MM[:SS]` (a datetime-local field's value; a space for the T is accepted), or RFC 3339.
    static func parseTyped(_ text: String) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: " ", with: "T")
        if let date = GraphDate.parse(trimmed) { return date }
        for suffix in [":00Z", "Z"] {
            if let date = GraphDate.parse(trimmed + suffix) { return date }
        }
        return nil
    }

    func registerKeyCreation(on console: RouterGroup<VaultRequestContext>) {
        console.post("keys/new") { request, context in
            try await post(request, context: context, roles: [.servicePrincipal]) { signed, form in
                let name = Self.pathName(form["name"] ?? "")
                let kty = form["kty"] == "RSA" ? "RSA" : "RSA-HSM"
                let answer = try await api(signed, context).call(.post, "/keys/\(name)/create", body: ["kty": kty, "key_size": Int(form["size"] ?? "") ?? 2048])
                return try await afterChange(answer, name: name, signed: signed, context: context)
            }
        }
    }
}
