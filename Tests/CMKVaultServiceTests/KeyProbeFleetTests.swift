import CMKTesting
import Foundation
import Testing

/// The key-state probe on real processes (issue 22): one cmk-vault, one and then three long-running
/// cmk-syncer daemons with events off, a 15-minute poll (also while pulled) and `probe-interval: 10s`, and the
/// customer's runbooks through Microsoft's SDK. Only a probe explains a host following within
/// seconds: rotate → every account on every host rebound, pull → every read refused, restore →
/// every read works, each within the probe interval plus the pass.
@Suite(.serialized) struct KeyProbeFleetTests {
    typealias Fleet = EventPushTests.Fleet
    typealias Push = EventPushTests

    /// The probe interval plus a pass on five accounts plus a few seconds.
    static let bound: TimeInterval = 10 + 6

    /// The host's passes that the probe started after `since`.
    static func probePasses(_ daemon: EventPushTests.Daemon, since: Date) -> Int {
        daemon.times(of: "Sync pass finished.", with: ["reasons=probe"], since: since).count
    }

    static func expectWithinBound(_ seconds: [Double], _ what: String) {
        for (index, value) in seconds.enumerated() {
            #expect(value < bound, "host-\(index + 1): \(what) only after \(value) s (probe 10 s + pass)")
        }
    }

    @Test("events off, probe 10 s: one daemon, and three sharing the vault, follow rotate, pull (every read refused) and restore within the probe interval plus the pass",
          arguments: [1, 3])
    func hostsFollowByProbing(hosts: Int) throws {
        let fleet = try Fleet(events: false, sync: "sync: {interval: 15m, jitter: 0%, pulled-poll-interval: 15m, probe-interval: 10s}", hosts: hosts)
        #expect(fleet.daemons.count == hosts)
        defer { fleet.stop() }
        let first = fleet.first
        let started = Date()
        _ = try fleet.until("bound to the first version", from: started, timeout: 60) { Push.bound($0, to: first) }
        try Push.writeObjects(fleet)

        let rotation = try fleet.customer("rotate")
        let second = try #require(rotation["version"] as? String)
        let rotated = try Push.returned(rotation)
        let rebound = try fleet.until("every account rebound to the new version", from: rotated, timeout: 40) { Push.bound($0, to: second) }
        print("probe 10 s, \(hosts) host(s): rotation followed (every account rebound) after \(Push.format(rebound))")
        Self.expectWithinBound(rebound, "every account rebound")

        let pulled = try Push.returned(try fleet.customer("pull"))
        let refused = try fleet.until("every account suspended", from: pulled, timeout: 40) { Push.suspended($0) }
        print("probe 10 s, \(hosts) host(s): pull noticed (every account suspended, reads refused) after \(Push.format(refused))")
        Self.expectWithinBound(refused, "every account suspended")
        for daemon in fleet.daemons {
            for account in Push.accounts(daemon) { #expect(Push.read(daemon, account).status == 4, "\(account) still reads") }
        }

        let restored = try Push.returned(try fleet.customer("restore"))
        let readable = try fleet.until("reads work again", from: restored, timeout: 40) { daemon in
            Push.accounts(daemon).allSatisfy { Push.read(daemon, $0) == (0, "customer data") }
        }
        print("probe 10 s, \(hosts) host(s): restore followed (every read works) after \(Push.format(readable))")
        Self.expectWithinBound(readable, "every read works")

        for daemon in fleet.daemons {
            // Rotate, pull, restore: each a pass the probe started, and a journal notice naming the change.
            #expect(Self.probePasses(daemon, since: started) >= 3, "\(daemon.log.suffix(4000))")
            #expect(daemon.log.contains("The key-state probe saw a change a pass acts on; a pass runs now."))
            #expect(daemon.log.contains("new-current-version") && daemon.log.contains("key-deleted") && daemon.log.contains("key-recovered"),
                    "\(daemon.log.suffix(4000))")
            let status = try daemon.host.run("cmkctl", ["status", "--json"])
            let document = try #require((try? JSONSerialization.jsonObject(with: status.output)) as? [String: Any])
            let probe = try #require((document["probe"] as? [String: Any])?["status"] as? [String: Any], "\(document)")
            #expect((probe["passesStarted"] as? Int ?? 0) >= 3)
            #expect(probe["faults"] as? Int == 0)
            let text = try daemon.host.run("cmkctl", ["status"])
            #expect(String(decoding: text.output, as: UTF8.self).contains("probe: every 10s;"))
        }
    }
}
