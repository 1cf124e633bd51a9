import CMKConfiguration
import CMKCore
import CMKKeyVaultAPI
import Foundation
import Logging
import Testing

@testable import CMKVaultService

/// The scheduler that carries the rotation policies out, in-process over the in-memory store, a
/// recording security log and a clock the test moves (the process tests run the real service).
@Suite struct RotationSchedulerTests {
    typealias Fixture = RotationPolicyTests.Fixture

    @Test("the scheduler rotates a due key once: record first, one new version with the policy's expiry, KeyNewVersionCreated; then nothing is due")
    func dueRotationOnce() async throws {
        let fixture = Fixture()
        #expect(fixture.send("POST", "/keys/Rotating/create", #"{"kty":"RSA"}"#).status == 200)
        #expect(fixture.send("PUT", "/keys/rotating/rotationpolicy",
                             #"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P90D"}}"#).status == 200)
        let first = try #require(fixture.versions("rotating").first)
        fixture.clock.advance(days: 29.9)
        #expect(await fixture.scheduler.check().isEmpty, "rotated before the moment")
        #expect(try fixture.versions("rotating").count == 1)

        fixture.clock.advance(days: 0.2)
        let done = await fixture.scheduler.check()
        #expect(done.map(\.kind) == [.rotate(trigger: "timeAfterCreate P30D")])
        let versions = try fixture.versions("rotating")
        #expect(versions.count == 2)
        #expect(versions[1].expires == versions[1].created + 90 * 86_400)
        let records = fixture.log.records.withLock { $0 }
        #expect(records.map(\.operation) == ["key-rotated"])
        #expect(records.first?.actor == "rotation-policy" && records.first?.details["version"] == first.version && records.first?.details["key"] == "Rotating")
        #expect(fixture.keyEvents.events.withLock { $0 } == [KeyEvent(kind: .newVersionCreated, keyName: "Rotating", version: versions[1].version,
                                                                        expires: versions[1].expires, time: Date(timeIntervalSince1970: TimeInterval(versions[1].created)))])

        // Checked again at once, and an hour later: the new version is not due.
        #expect(await fixture.scheduler.check().isEmpty)
        fixture.clock.advance(days: 1)
        #expect(await fixture.scheduler.check().isEmpty)
        #expect(try fixture.versions("rotating").count == 2 && fixture.log.operations == ["key-rotated"])
    }

    @Test("fail closed: a rotation whose record cannot be made durable is not done, and is done at the next check")
    func failClosed() async throws {
        let fixture = Fixture()
        #expect(fixture.send("POST", "/keys/k/create", #"{"kty":"RSA"}"#).status == 200)
        #expect(fixture.send("PUT", "/keys/k/rotationpolicy", #"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P7D"},"action":{"type":"Rotate"}}]}"#).status == 200)
        fixture.clock.advance(days: 8)
        fixture.log.failing.withLock { $0 = true }
        #expect(await fixture.scheduler.check().isEmpty)
        #expect(try fixture.versions("k").count == 1, "rotated without a record")
        #expect(fixture.keyEvents.kinds.isEmpty)
        fixture.log.failing.withLock { $0 = false }
        #expect(await fixture.scheduler.check().count == 1)
        #expect(try fixture.versions("k").count == 2 && fixture.log.operations == ["key-rotated"])
    }

    @Test("a rotation judged due for a version that is no longer current does nothing (an API rotation came first)")
    func supersededRotation() throws {
        let fixture = Fixture()
        #expect(fixture.send("POST", "/keys/k/create", #"{"kty":"RSA"}"#).status == 200)
        let old = try #require(fixture.versions("k").first?.version)
        #expect(fixture.send("POST", "/keys/k/rotate").status == 200)
        #expect(try fixture.api.rotate("k", ifCurrent: old) == nil)
        #expect(try fixture.versions("k").count == 2)
    }

    @Test("near expiry and expiry: one warning each per version (record, event), none before the window; a Notify action sets the window")
    func warnings() async throws {
        let fixture = Fixture()
        let start = 1_778_516_111
        #expect(fixture.send("POST", "/keys/Expiring/create", #"{"kty":"RSA","attributes":{"exp":\#(start + 40 * 86_400)}}"#).status == 200)
        #expect(fixture.send("POST", "/keys/notified/create", #"{"kty":"RSA","attributes":{"exp":\#(start + 40 * 86_400)}}"#).status == 200)
        #expect(fixture.send("PUT", "/keys/notified/rotationpolicy", #"{"lifetimeActions":[{"trigger":{"timeBeforeExpiry":"P20D"},"action":{"type":"Notify"}}]}"#).status == 200)
        #expect(fixture.send("POST", "/keys/forever/create", #"{"kty":"RSA"}"#).status == 200)

        fixture.clock.advance(days: 9.9)
        #expect(await fixture.scheduler.check().isEmpty)
        fixture.clock.advance(days: 0.2)  // 29.9 days before the expiry: the default 30-day window
        #expect(await fixture.scheduler.check().map(\.keyName) == ["Expiring"])
        #expect(await fixture.scheduler.check().isEmpty, "warned twice for one version")
        fixture.clock.advance(days: 10)  // 19.9 days before: the Notify P20D window
        #expect(await fixture.scheduler.check().map(\.keyName) == ["notified"])
        #expect(fixture.log.operations == ["key-near-expiry", "key-near-expiry"])
        #expect(try fixture.store.entry("expiring").live?.nearExpiryWarned == fixture.versions("expiring").first?.version)

        fixture.clock.advance(days: 20)
        let expired = await fixture.scheduler.check()
        #expect(Set(expired.map(\.keyName)) == ["Expiring", "notified"] && expired.allSatisfy { $0.kind == .expired })
        #expect(await fixture.scheduler.check().isEmpty)
        #expect(fixture.log.operations.filter { $0 == "key-expired" }.count == 2)
        #expect(fixture.keyEvents.kinds.filter { $0 == .nearExpiry }.count == 2 && fixture.keyEvents.kinds.filter { $0 == .expired }.count == 2)
        #expect(fixture.log.records.withLock { $0 }.allSatisfy { $0.actor == "rotation-policy" && $0.details["version"] != nil })
    }
    @Test("vault.rotation-check-interval: a duration of 1s to 1h, default 1m; outside, an error naming the key and the range")
    func checkInterval() throws {
        let file = "/etc/cmk-vault/cmk-vault.yaml"
        let minimalYAML = "public-url: https://vault.example.com:8443\ntls: {certificate-credential: tls.crt, key-credential: tls.key}"
        #expect(try VaultServiceConfiguration.parse(yaml: "\(minimalYAML)\nvault: {master-key-file: k}", file: file, environment: [:]).vault?.rotationCheckInterval == .seconds(60))
        #expect(try VaultServiceConfiguration.parse(yaml: "\(minimalYAML)\nvault: {master-key-file: k, rotation-check-interval: 30s}", file: file, environment: [:])
            .vault?.rotationCheckInterval == .seconds(30))
        for bad in ["0s", "2h"] {
            do {
                _ = try VaultServiceConfiguration.parse(yaml: "\(minimalYAML)\nvault: {master-key-file: k, rotation-check-interval: \(bad)}", file: file, environment: [:])
                Issue.record("rotation-check-interval \(bad) was accepted")
            } catch {
                #expect(error.description.contains("vault.rotation-check-interval") && error.description.contains("1s to 1h"), "\(error)")
            }
        }
    }
}

extension RotationPolicyTests.Fixture {
    var scheduler: RotationScheduler {
        RotationScheduler(api: api, events: log, keyEvents: keyEvents, interval: .seconds(60), logger: Logger(label: "test"))
    }
}
