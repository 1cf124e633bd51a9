import CMKCore
import CMKKeyVaultAPI
import Foundation
import Logging
import Synchronization
import Testing

@testable import CMKVaultService

/// `GET/PUT /keys/{name}/rotationpolicy` over the in-memory store, on a clock the test moves
/// (docs/vault-service.md, "Rotation policy"); RotationSchedulerTests carries the policies out.
@Suite struct RotationPolicyTests {
    final class MovableClock: WallClock {
        let time: Mutex<Date>
        init(_ date: Date) { time = Mutex(date) }
        func now() -> Date { time.withLock { $0 } }
        func advance(days: Double) { time.withLock { $0 = $0.addingTimeInterval(days * 86_400) } }
    }

    /// The security log as the scheduler sees it: records in order, or a failing disk.
    final class RecordingSink: ServiceEventSink {
        let records = Mutex<[ServiceEvent]>([])
        let failing = Mutex(false)
        func record(_ event: ServiceEvent) async throws -> UInt64? {
            if failing.withLock({ $0 }) { throw EventNotRecorded(operation: event.operation, detail: "the test's log is full") }
            return records.withLock { records in
                records.append(event)
                return UInt64(records.count - 1)
            }
        }
        var operations: [String] { records.withLock { $0.map(\.operation) } }
    }

    final class CollectingKeyEvents: KeyEventSink {
        let events = Mutex<[KeyEvent]>([])
        func publish(_ event: KeyEvent) { events.withLock { $0.append(event) } }
        var kinds: [KeyEvent.Kind] { events.withLock { $0.map(\.kind) } }
    }

    struct Fixture {
        let clock = MovableClock(Date(timeIntervalSince1970: 1_778_516_111))
        let store = InMemoryKeyRecordStore()
        let log = RecordingSink()
        let keyEvents = CollectingKeyEvents()
        var api: KeyVaultAPI {
            KeyVaultAPI(configuration: .init(retentionDays: 7, purgeProtection: false, clock: clock, vaultName: "test"), store: store,
                        vaultURL: { "https://vault.test" })
        }

        func send(_ method: String, _ path: String, _ body: String = "") -> (status: Int, body: [String: Any]) {
            let response = api.handle(ServerRequest(method: method, uri: path + "?api-version=7.6", headers: [], body: Data(body.utf8)))
            return (response.status, (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:])
        }

        func versions(_ name: String) throws -> [KeyVersionRecord] { try store.entry(name).live?.versions ?? [] }
    }

    static func json(_ object: Any) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    @Test("a key without a policy answers Azure's default; PUT answers the recording's shape (Notify added) and GET returns it")
    func shapes() throws {
        let fixture = Fixture()
        #expect(fixture.send("POST", "/keys/Policy-Key/create", #"{"kty":"RSA"}"#).status == 200)
        let missing = fixture.send("GET", "/keys/other/rotationpolicy")
        #expect(missing.status == 404 && (missing.body["error"] as? [String: Any])?["code"] as? String == "KeyNotFound")

        let defaults = fixture.send("GET", "/keys/policy-key/rotationpolicy")
        #expect(defaults.status == 200)
        #expect(Self.json(defaults.body) == Self.json([
            "id": "https://vault.test/keys/Policy-Key/rotationpolicy",
            "lifetimeActions": [["trigger": ["timeBeforeExpiry": "P30D"], "action": ["type": "Notify"]]],
            "attributes": [String: Any](),
        ]))

        // The JS SDK's request in js-rotation_policy_create_and_get-7.6.json, and the service's answer there.
        let put = fixture.send("PUT", "/keys/Policy-Key/rotationpolicy",
                               #"{"lifetimeActions":[{"trigger":{"timeBeforeExpiry":"P30D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P90D"}}"#)
        let expected: [String: Any] = [
            "id": "https://vault.test/keys/Policy-Key/rotationpolicy",
            "lifetimeActions": [["trigger": ["timeBeforeExpiry": "P30D"], "action": ["type": "Rotate"]],
                                ["trigger": ["timeBeforeExpiry": "P30D"], "action": ["type": "Notify"]]],
            "attributes": ["expiryTime": "P90D", "created": 1_778_516_111, "updated": 1_778_516_111],
        ]
        #expect(put.status == 200)
        #expect(Self.json(put.body) == Self.json(expected))
        #expect(Self.json(fixture.send("GET", "/keys/policy-key/rotationpolicy").body) == Self.json(expected))

        // A later PUT keeps the creation date; an explicit null trigger is an absent one (PowerShell sends them).
        fixture.clock.advance(days: 1)
        let again = fixture.send("PUT", "/keys/policy-key/rotationpolicy",
                                 #"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P18M","timeBeforeExpiry":null},"action":{"type":"rotate"}},{"trigger":{"timeBeforeExpiry":"P10D"},"action":{"type":"Notify"}}],"attributes":{"expiryTime":"P2Y"}}"#)
        #expect(again.status == 200, "\(again)")
        let attributes = again.body["attributes"] as? [String: Any]
        #expect(attributes?["created"] as? Int == 1_778_516_111 && attributes?["updated"] as? Int == 1_778_516_111 + 86_400)
        #expect(Self.json(again.body["lifetimeActions"] ?? []) == Self.json([
            ["trigger": ["timeAfterCreate": "P18M"], "action": ["type": "Rotate"]],
            ["trigger": ["timeBeforeExpiry": "P10D"], "action": ["type": "Notify"]],
        ]))

        // The policy is part of the key: kept through delete and recover.
        #expect(fixture.send("DELETE", "/keys/policy-key").status == 200)
        #expect(fixture.send("GET", "/keys/policy-key/rotationpolicy").status == 404)
        #expect(fixture.send("POST", "/deletedkeys/policy-key/recover").status == 200)
        #expect(Self.json(fixture.send("GET", "/keys/policy-key/rotationpolicy").body) == Self.json(again.body))
        // So is it through a new version made by create on the existing name.
        #expect(fixture.send("POST", "/keys/policy-key/create", #"{"kty":"RSA"}"#).status == 200)
        #expect(Self.json(fixture.send("GET", "/keys/policy-key/rotationpolicy").body) == Self.json(again.body))
    }

    @Test("invalid policies are 400 BadParameter naming the field and the rule", arguments: [
        (#"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"90 days"},"action":{"type":"Rotate"}}]}"#, "is not an ISO 8601 duration"),
        (#"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P1DT"},"action":{"type":"Rotate"}}]}"#, "is not an ISO 8601 duration"),
        (#"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D","timeBeforeExpiry":"P30D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P1Y"}}"#, "exactly one of timeAfterCreate and timeBeforeExpiry"),
        (#"{"lifetimeActions":[{"trigger":{},"action":{"type":"Rotate"}}]}"#, "exactly one of timeAfterCreate and timeBeforeExpiry"),
        (#"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Notify"}}]}"#, "a Notify action takes timeBeforeExpiry"),
        (#"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Delete"}}]}"#, "accepted values: Rotate, Notify"),
        (#"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"}}]}"#, "'lifetimeActions[0].action.type' is required"),
        (#"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P6D"},"action":{"type":"Rotate"}}]}"#, "must be at least 7 days"),
        (#"{"lifetimeActions":[{"trigger":{"timeBeforeExpiry":"P30D"},"action":{"type":"Rotate"}}]}"#, "needs 'attributes.expiryTime'"),
        (#"{"lifetimeActions":[],"attributes":{"expiryTime":"P27D"}}"#, "must be at least 28 days"),
        (#"{"lifetimeActions":[],"attributes":{"expiryTime":"P101Y"}}"#, "at most 100 years"),
        (#"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P85D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P90D"}}"#, "must leave at least 7 days"),
        (#"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}},{"trigger":{"timeAfterCreate":"P60D"},"action":{"type":"Rotate"}}]}"#, "at most one Rotate action"),
        (#"{"lifetimeActions":"P30D"}"#, "Invalid value for 'lifetimeActions'"),
    ])
    func validation(body: String, message: String) throws {
        let fixture = Fixture()
        #expect(fixture.send("POST", "/keys/k/create", #"{"kty":"RSA"}"#).status == 200)
        let answer = fixture.send("PUT", "/keys/k/rotationpolicy", body)
        let error = answer.body["error"] as? [String: Any]
        #expect(answer.status == 400 && error?["code"] as? String == "BadParameter", "\(answer)")
        #expect((error?["message"] as? String)?.contains(message) == true, "\(error?["message"] ?? "no message") lacks \(message)")
        #expect(try fixture.store.entry("k").live?.rotationPolicy == nil, "a refused policy was stored")
    }

    @Test("ISO 8601 durations: calendar months and years in UTC, weeks, time parts")
    func durations() {
        let january31 = 1_769_817_600  // 2026-01-31T00:00:00Z
        #expect(ISODuration("P1M")?.after(january31) == 1_772_236_800)  // 2026-02-28
        #expect(ISODuration("P1Y10D")?.after(0) == 365 * 86_400 + 10 * 86_400)
        #expect(ISODuration("P2W")?.after(0) == 14 * 86_400)
        #expect(ISODuration("PT48H")?.after(0) == 48 * 3_600)
        #expect(ISODuration("P1DT1H1M1S")?.after(0) == 86_400 + 3_661)
        #expect(ISODuration("P90D")?.before(90 * 86_400) == 0)
        for bad in ["", "P", "PT", "30D", "P1H", "P1D1Y", "P1M1M", "P-1D", "P1.5D"] { #expect(ISODuration(bad) == nil, "\(bad)") }
    }

    @Test("a rotation of a key whose policy has expiryTime gives the new version exp = created + expiryTime; without, none")
    func rotationExpiry() throws {
        let fixture = Fixture()
        #expect(fixture.send("POST", "/keys/k/create", #"{"kty":"RSA"}"#).status == 200)
        let plain = fixture.send("POST", "/keys/k/rotate")
        #expect(plain.status == 200 && (plain.body["attributes"] as? [String: Any])?["exp"] == nil)
        #expect(fixture.send("PUT", "/keys/k/rotationpolicy", #"{"lifetimeActions":[],"attributes":{"expiryTime":"P90D"}}"#).status == 200)
        let rotated = fixture.send("POST", "/keys/k/rotate")
        let attributes = try #require(rotated.body["attributes"] as? [String: Any])
        #expect(attributes["exp"] as? Int == 1_778_516_111 + 90 * 86_400 && attributes["created"] as? Int == 1_778_516_111)
    }
}
