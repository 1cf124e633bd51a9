import CMKIdentity
import Foundation
import Hummingbird

/// The rotation policy page (`/console/keys/{name}/rotation-policy`, docs/console.md): the key's
/// policy and a plain form to replace it. The form is turned into the body of
/// `PUT /keys/{name}/rotationpolicy` and sent through the keys API (``ConsoleKeysAPI``), so the
/// API alone validates it (one set of rules) and the change gets the API's record
/// (`key-rotation-policy-updated`, fail closed) and answer. A refusal shows the API's message,
/// names the form field it is about, and keeps what was typed.
extension ConsoleRoutes {
    /// The form's fields as typed: each an ISO 8601 duration, or empty for none.
    struct PolicyForm: Equatable, Sendable {
        enum Field: String, CaseIterable, Sendable {
            case expiryTime, rotateAfterCreate, rotateBeforeExpiry, notifyBeforeExpiry

            var label: String {
                switch self {
                case .expiryTime: "Expiry of new versions"
                case .rotateAfterCreate: "Rotate: time after creation"
                case .rotateBeforeExpiry: "Rotate: time before expiry"
                case .notifyBeforeExpiry: "Notify: time before expiry"
                }
            }
        }

        var values: [Field: String] = [:]

        subscript(_ field: Field) -> String {
            get { values[field] ?? "" }
            set { values[field] = newValue }
        }

        init(_ values: [Field: String] = [:]) { self.values = values }

        /// Equal when every field reads the same (a missing field is empty).
        static func == (lhs: Self, rhs: Self) -> Bool { Field.allCases.allSatisfy { lhs[$0] == rhs[$0] } }

        /// From a posted form (surrounding spaces dropped; a missing field is empty).
        init(form: [String: String]) {
            for field in Field.allCases { self[field] = (form[field.rawValue] ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }
        }

        /// From the keys API's answer to `GET …/rotationpolicy`.
        init(policy json: [String: Any]?) {
            self[.expiryTime] = (json?["attributes"] as? [String: Any])?["expiryTime"] as? String ?? ""
            for action in json?["lifetimeActions"] as? [[String: Any]] ?? [] {
                let type = ((action["action"] as? [String: Any])?["type"] as? String ?? "").lowercased()
                let trigger = action["trigger"] as? [String: Any] ?? [:]
                if type == "rotate" {
                    self[.rotateAfterCreate] = trigger["timeAfterCreate"] as? String ?? ""
                    self[.rotateBeforeExpiry] = trigger["timeBeforeExpiry"] as? String ?? ""
                } else if type == "notify" {
                    self[.notifyBeforeExpiry] = trigger["timeBeforeExpiry"] as? String ?? ""
                }
            }
        }

        /// The actions the form asks for, in the order of the request's `lifetimeActions`: Rotate
        /// when either of its triggers is filled in, Notify when its trigger is.
        var actions: [String] {
            var actions: [String] = []
            if !self[.rotateAfterCreate].isEmpty || !self[.rotateBeforeExpiry].isEmpty { actions.append("Rotate") }
            if !self[.notifyBeforeExpiry].isEmpty { actions.append("Notify") }
            return actions
        }

        /// The `PUT /keys/{name}/rotationpolicy` body, Azure's shape. Nothing is checked here: both
        /// Rotate triggers filled in are sent as they are, and the keys API refuses them.
        var requestBody: [String: Any] {
            let lifetimeActions = actions.map { type -> [String: Any] in
                var trigger: [String: Any] = [:]
                if type == "Rotate" {
                    if !self[.rotateAfterCreate].isEmpty { trigger["timeAfterCreate"] = self[.rotateAfterCreate] }
                    if !self[.rotateBeforeExpiry].isEmpty { trigger["timeBeforeExpiry"] = self[.rotateBeforeExpiry] }
                } else {
                    trigger["timeBeforeExpiry"] = self[.notifyBeforeExpiry]
                }
                return ["trigger": trigger, "action": ["type": type]]
            }
            let attributes: [String: Any] = self[.expiryTime].isEmpty ? [:] : ["expiryTime": self[.expiryTime]]
            return ["lifetimeActions": lifetimeActions, "attributes": attributes]
        }

        /// The form fields a refusal of the keys API is about, from the member its message names
        /// first (`'attributes.expiryTime'`, `'lifetimeActions[0].trigger.timeAfterCreate'`, …).
        func fields(named message: String) -> [Field] {
            let parts = message.split(separator: "'", omittingEmptySubsequences: false)
            guard parts.count >= 3 else { return [] }
            let member = String(parts[1])
            if member.hasPrefix("attributes.expiryTime") { return [.expiryTime] }
            guard member.hasPrefix("lifetimeActions["), let close = member.firstIndex(of: "]"),
                  let index = Int(member[member.index(member.startIndex, offsetBy: 16)..<close]), actions.indices.contains(index) else { return [] }
            let rest = member[member.index(after: close)...]
            if actions[index] == "Notify" { return [.notifyBeforeExpiry] }
            if rest.hasSuffix("timeAfterCreate") { return [.rotateAfterCreate] }
            if rest.hasSuffix("timeBeforeExpiry") { return [.rotateBeforeExpiry] }
            return [.rotateAfterCreate, .rotateBeforeExpiry]
        }
    }

    func registerRotationPolicyPage(on console: RouterGroup<VaultRequestContext>) {
        let sp: Set<Role> = [.servicePrincipal]
        console.get("keys/:name/rotation-policy") { request, context in
            try await page(request, context: context, roles: sp) { signed in
                try await policyPage(signed, context: context, name: try context.parameters.require("name"), typed: nil, refusal: nil,
                                     saved: request.uri.queryParameters["saved"].flatMap { Int($0) })
            }
        }
        console.post("keys/:name/rotation-policy") { request, context in
            try await post(request, context: context, roles: sp) { signed, form in
                let name = try context.parameters.require("name")
                let typed = PolicyForm(form: form)
                let answer = try await api(signed, context).call(.put, "/keys/\(Self.pathName(name))/rotationpolicy", body: typed.requestBody)
                guard answer.ok else {
                    var page = try await policyPage(signed, context: context, name: name, typed: typed, refusal: answer.message, saved: nil)
                    page.role = signed.principal.role
                    page.csrf = signed.csrf
                    return page.response(status: .init(code: answer.status))
                }
                // The redirect names the policy's `updated` time from the PUT's answer: the page says
                // "Saved" only while the stored policy still carries it, so a crafted or stale link
                // (`?saved=…` by hand, or after someone else's change) claims no save.
                let updated = Self.policyUpdated(answer.json).map { "?saved=\($0)" } ?? ""
                return ConsolePage.redirect("/console/keys/\(Self.pathName(name))/rotation-policy\(updated)")
            }
        }
    }

    /// `attributes.updated` of a rotation policy as the keys API answers it (Unix seconds).
    static func policyUpdated(_ policy: [String: Any]?) -> Int? {
        ((policy?["attributes"] as? [String: Any])?["updated"] as? NSNumber)?.intValue
    }

    /// The policy as stored (or the API's refusal to read it), "Saved" after a change, and the form:
    /// filled in with `typed` after a refusal, else with the stored policy. `saved` is the `updated`
    /// time the save redirected with: "Saved" shows only when the stored policy still has it.
    func policyPage(_ signed: Signed, context: VaultRequestContext, name: String, typed: PolicyForm?, refusal: String?, saved: Int?) async throws -> ConsolePage {
        let keyPath = "/console/keys/\(Self.pathName(name))"
        let stored = try await api(signed, context).call(.get, "/keys/\(Self.pathName(name))/rotationpolicy")
        guard stored.ok else {
            return ConsolePage(title: "Rotation policy of \(name)", body: """
                <p class="warning" role="alert">\(ConsolePage.escape(stored.message))</p><p><a href="/console/keys">Keys</a> · <a href="/console/deleted-keys">Deleted keys</a></p>
                """)
        }
        let form = typed ?? PolicyForm(policy: stored.json)
        let invalid = Set(refusal.map { form.fields(named: $0) } ?? [])
        var notice = ""
        if let refusal {
            let about = invalid.isEmpty ? "" : "<strong>" + invalid.sorted { $0.rawValue < $1.rawValue }.map { ConsolePage.escape($0.label) }.joined(separator: ", ") + "</strong>: "
            notice = "<p class=\"warning\" role=\"alert\" id=\"policy-error\">\(about)\(ConsolePage.escape(refusal)) Nothing was changed.</p>"
        } else if let saved, saved == Self.policyUpdated(stored.json) {
            notice = "<p class=\"notice\" role=\"status\">Saved. This is the key's rotation policy now.</p>"
        }
        func input(_ field: PolicyForm.Field, example: String) -> String {
            let error = invalid.contains(field) ? " aria-invalid=\"true\" aria-describedby=\"policy-error\"" : ""
            return "<label for=\"\(field.rawValue)\">\(ConsolePage.escape(field.label)) (\(example))</label>"
                + "<input type=\"text\" id=\"\(field.rawValue)\" name=\"\(field.rawValue)\" value=\"\(ConsolePage.escape(form[field]))\" autocomplete=\"off\" spellcheck=\"false\"\(error)>"
        }
        return ConsolePage(title: "Rotation policy of \(name)", body: """
            \(notice)<h2>Now</h2>
            \(Self.policyText(stored.json))
            <h2>Change it</h2>
            <p>Durations are ISO 8601: <code>P90D</code> is 90 days, <code>P2W</code> two weeks, <code>P18M</code> 18 months, <code>P1Y</code> a year. \
            An empty field means none. Each trigger is at least 7 days (<code>P7D</code>); the expiry of new versions is at least 28 days and at most 100 years, \
            and a trigger leaves at least 7 days of it. The service checks the policies every <code>vault.rotation-check-interval</code> (1 minute by default); after an automatic rotation every host rebinds its accounts at its next pass.</p>
            <form method="post" action="\(keyPath)/rotation-policy" class="policy"><input type="hidden" name="csrf" value="\(ConsolePage.escape(signed.csrf))">
            \(input(.expiryTime, example: "e.g. P1Y; empty: new versions do not expire"))
            <fieldset><legend>Rotate automatically: fill in one trigger, or neither for no automatic rotation</legend>
            \(input(.rotateAfterCreate, example: "e.g. P90D"))
            \(input(.rotateBeforeExpiry, example: "e.g. P30D; needs an expiry of new versions"))
            </fieldset>
            <fieldset><legend>Notify before the current version expires</legend>
            \(input(.notifyBeforeExpiry, example: "e.g. P30D; empty: 30 days"))
            </fieldset>
            <p><button type="submit">Save rotation policy</button></p></form>
            <p><a href="\(keyPath)">Back to the key</a></p>
            """)
    }
}
