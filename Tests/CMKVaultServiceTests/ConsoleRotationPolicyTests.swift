@testable import CMKVaultService
import Foundation
import Testing

/// The console's rotation policy form (docs/console.md, "Rotation policy"): what is typed becomes
/// the body of `PUT /keys/{name}/rotationpolicy`, sent here to the keys API in-process (the
/// in-memory fixture of RotationPolicyTests) as the console sends it through `KeyVaultRoutes`.
/// Every refusal is the API's, names the member, points the page at the form field it is about,
/// and leaves the stored policy as it was; a good form stores what the API's PUT would.
@Suite struct ConsoleRotationPolicyTests {
    typealias Form = ConsoleRoutes.PolicyForm

    static let good: [String: String] = ["expiryTime": "P1Y", "rotateAfterCreate": " P90D ", "rotateBeforeExpiry": "", "notifyBeforeExpiry": "P30D"]

    static func put(_ fixture: RotationPolicyTests.Fixture, _ form: Form) throws -> (status: Int, body: [String: Any]) {
        let body = try JSONSerialization.data(withJSONObject: form.requestBody, options: [.sortedKeys])
        return fixture.send("PUT", "/keys/console-key/rotationpolicy", String(decoding: body, as: UTF8.self))
    }

    static func message(_ answer: (status: Int, body: [String: Any])) -> String {
        (answer.body["error"] as? [String: Any])?["message"] as? String ?? ""
    }

    @Test("a good form stores exactly the policy a PUT of the same values would, and the page reads it back into the form")
    func goodForm() throws {
        let fixture = RotationPolicyTests.Fixture()
        #expect(fixture.send("POST", "/keys/console-key/create", #"{"kty":"RSA"}"#).status == 200)
        let form = Form(form: Self.good)
        #expect(form[.rotateAfterCreate] == "P90D", "surrounding spaces are dropped")
        // The body a script would send for the same policy (Azure's shape).
        #expect(RotationPolicyTests.json(form.requestBody) == RotationPolicyTests.json([
            "lifetimeActions": [["trigger": ["timeAfterCreate": "P90D"], "action": ["type": "Rotate"]],
                                ["trigger": ["timeBeforeExpiry": "P30D"], "action": ["type": "Notify"]]],
            "attributes": ["expiryTime": "P1Y"],
        ]))
        let saved = try Self.put(fixture, form)
        #expect(saved.status == 200, "\(saved.body)")
        let stored = fixture.send("GET", "/keys/console-key/rotationpolicy").body
        #expect(RotationPolicyTests.json(stored["lifetimeActions"] ?? []) == RotationPolicyTests.json(form.requestBody["lifetimeActions"] ?? []))
        #expect((stored["attributes"] as? [String: Any])?["expiryTime"] as? String == "P1Y")
        #expect(Form(policy: stored) == form, "the form shows the stored policy")

        // Empty fields: no Rotate, no expiry; the API adds its default Notify (30 days).
        let empty = Form(form: [:])
        #expect(RotationPolicyTests.json(empty.requestBody) == RotationPolicyTests.json(["lifetimeActions": [Any](), "attributes": [String: Any]()]))
        #expect(try Self.put(fixture, empty).status == 200)
        #expect(Form(policy: fixture.send("GET", "/keys/console-key/rotationpolicy").body) == Form([.notifyBeforeExpiry: "P30D"]))
    }

    @Test("each bad value is the keys API's refusal naming the member and the form field; nothing is stored", arguments: [
        (["rotateAfterCreate": "P90X", "notifyBeforeExpiry": "P30D"], "'lifetimeActions[0].trigger.timeAfterCreate': 'P90X' is not an ISO 8601 duration", [Form.Field.rotateAfterCreate]),
        (["expiryTime": "1 year"], "'attributes.expiryTime': '1 year' is not an ISO 8601 duration", [.expiryTime]),
        (["expiryTime": "P1Y", "rotateAfterCreate": "P90D", "rotateBeforeExpiry": "P30D"], "'lifetimeActions[0].trigger': exactly one of timeAfterCreate and timeBeforeExpiry",
         [.rotateAfterCreate, .rotateBeforeExpiry]),
        (["rotateAfterCreate": "P6D"], "'lifetimeActions[0].trigger.timeAfterCreate': 'P6D' must be at least 7 days", [.rotateAfterCreate]),
        (["rotateAfterCreate": "P90D", "notifyBeforeExpiry": "PT48H"], "'lifetimeActions[1].trigger.timeBeforeExpiry': 'PT48H' must be at least 7 days", [.notifyBeforeExpiry]),
        (["notifyBeforeExpiry": "P3D"], "'lifetimeActions[0].trigger.timeBeforeExpiry': 'P3D' must be at least 7 days", [.notifyBeforeExpiry]),
        (["expiryTime": "P27D"], "'attributes.expiryTime': 'P27D' must be at least 28 days (P28D) and at most 100 years", [.expiryTime]),
        (["expiryTime": "P101Y"], "'attributes.expiryTime': 'P101Y' must be at least 28 days (P28D) and at most 100 years", [.expiryTime]),
        (["rotateBeforeExpiry": "P30D"], "'lifetimeActions[0].trigger.timeBeforeExpiry': a Rotate action before expiry needs 'attributes.expiryTime'", [.rotateBeforeExpiry]),
        (["expiryTime": "P30D", "rotateAfterCreate": "P28D"], "'lifetimeActions[0].trigger.timeAfterCreate': 'P28D' must leave at least 7 days", [.rotateAfterCreate]),
    ])
    func refusals(typed: [String: String], expected: String, fields: [Form.Field]) throws {
        let fixture = RotationPolicyTests.Fixture()
        #expect(fixture.send("POST", "/keys/console-key/create", #"{"kty":"RSA"}"#).status == 200)
        #expect(try Self.put(fixture, Form(form: Self.good)).status == 200)
        let before = fixture.send("GET", "/keys/console-key/rotationpolicy").body

        let form = Form(form: typed)
        let answer = try Self.put(fixture, form)
        #expect(answer.status == 400, "\(answer.body)")
        let message = Self.message(answer)
        #expect(message.contains("Invalid value for " + expected), "\(message)")
        #expect(Set(form.fields(named: message)) == Set(fields), "\(message)")
        #expect(RotationPolicyTests.json(fixture.send("GET", "/keys/console-key/rotationpolicy").body) == RotationPolicyTests.json(before),
                "a refused form changed the stored policy")
    }

    @Test("a message naming no member, or an action the form did not send, points at no field")
    func unknownMembers() {
        let form = Form(form: ["rotateAfterCreate": "P90D"])
        #expect(form.fields(named: "the keys API answered 503").isEmpty)
        #expect(form.fields(named: "Invalid value for 'lifetimeActions[3].trigger.timeAfterCreate': x").isEmpty)
        #expect(form.fields(named: "Invalid value for 'lifetimeActions': a policy has at most one Rotate action.").isEmpty)
    }
}
