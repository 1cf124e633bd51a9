import CMKCore
import Foundation
import Testing

private let t0 = Date(timeIntervalSince1970: 1_767_225_600)

@Suite("Reconciler: (condition, keyring, policy, now) → plan")
struct ReconcilerTests {
    let v1 = KeyVersion(id: "v1", created: t0)
    let v2 = KeyVersion(id: "v2", created: t0.addingTimeInterval(60))
    let policy = ReconcilePolicy()

    func keyring(_ versions: [String], active: Int? = nil, suspended: Suspension.Reason? = nil) throws -> Keyring {
        let deks = versions.map { WrappedDEK(id: .random(), keyVersion: $0, wrappedKey: Data([1]), created: t0) }
        return Keyring(account: "a", key: try KeyReference("k"), generation: 3, deks: deks,
                       activeDEK: deks[active ?? deks.count - 1].id,
                       suspension: suspended.map { Suspension(reason: $0, since: t0) })
    }

    func plan(_ condition: KeyCondition, _ keyring: Keyring?, versions: [KeyVersion]? = nil,
              policy: ReconcilePolicy? = nil, now: Date = t0.addingTimeInterval(120)) -> AccountPlan {
        Reconciler.plan(condition, versions: versions ?? [v1, v2], keyring: keyring, policy: policy ?? self.policy, now: now)
    }

    @Test("bound to the current version: in sync")
    func inSync() throws {
        #expect(plan(.usable(target: v2), try keyring(["v2", "v2"])) == .inSync)
    }

    @Test("no keyring: create under the target")
    func create() {
        #expect(plan(.usable(target: v2), nil) == .create(target: v2))
    }

    @Test("new current version: rebind, naming the versions in use")
    func rotation() throws {
        #expect(plan(.usable(target: v2), try keyring(["v1", "v1"])) == .rebind(target: v2, from: ["v1"]))
        #expect(plan(.usable(target: v2), try keyring(["v1", "v2"])) == .rebind(target: v2, from: ["v1", "v2"]))
    }

    @Test("an old version disabled while it still wraps DEKs blocks the account, named")
    func disabledInUse() throws {
        let disabled = KeyVersion(id: "v1", created: t0, enabled: false)
        #expect(plan(.usable(target: v2), try keyring(["v1"]), versions: [disabled, v2]) == .blocked(.versionsDisabledInUse(["v1"])))
    }

    @Test("a version the key does not have is unknown (another key or vault, or damage), not disabled")
    func unknownVersion() throws {
        #expect(plan(.usable(target: v2), try keyring(["v0", "v2"]), versions: [v1, v2]) == .blocked(.versionsUnknown(["v0"])))
        let unusable = KeyCondition.currentUnusable(current: v2, refusal: .disabled, fallback: v1)
        #expect(plan(unusable, try keyring(["v9"]), versions: [v1, v2]) == .blocked(.versionsUnknown(["v9"])))
    }

    @Test("an account that had a keyring is never given a new one, whatever the vault says")
    func keyringMissing() throws {
        let deleted = DeletedKey(key: try KeyReference("k"), deletedDate: t0, scheduledPurgeDate: nil)
        for condition: KeyCondition in [.usable(target: v2), .pulled(deleted), .missing,
                                        .currentUnusable(current: v2, refusal: .disabled, fallback: v1)] {
            #expect(Reconciler.plan(condition, versions: [v1, v2], keyring: nil, keyringExpected: true, policy: policy, now: t0)
                    == .blocked(.keyringMissing))
        }
        // A keyring that is there is planned as usual.
        #expect(Reconciler.plan(.usable(target: v2), versions: [v1, v2], keyring: try keyring(["v2"]), keyringExpected: true,
                                policy: policy, now: t0) == .inSync)
    }

    @Test("key pulled, immediate: suspend; already suspended: stay")
    func pulledImmediate() throws {
        let deleted = DeletedKey(key: try KeyReference("k"), deletedDate: t0, scheduledPurgeDate: t0.addingTimeInterval(90 * 86_400))
        #expect(plan(.pulled(deleted), try keyring(["v1"])) == .suspend(reason: .keyPulled))
        #expect(plan(.pulled(deleted), try keyring(["v1"], suspended: .keyPulled)) == .staySuspended(Suspension(reason: .keyPulled, since: t0)))
        #expect(plan(.pulled(deleted), nil) == .blocked(.pulledBeforeCreation))
    }

    @Test("key pulled, after-cache-ttl: wait until deletion + TTL, then suspend")
    func pulledAfterTTL() throws {
        let deleted = DeletedKey(key: try KeyReference("k"), deletedDate: t0, scheduledPurgeDate: nil)
        let lazy = ReconcilePolicy(suspend: .afterCacheTTL, cacheTTL: .seconds(600))
        #expect(plan(.pulled(deleted), try keyring(["v1"]), policy: lazy, now: t0.addingTimeInterval(599)) == .suspendLater(at: t0.addingTimeInterval(600)))
        #expect(plan(.pulled(deleted), try keyring(["v1"]), policy: lazy, now: t0.addingTimeInterval(600)) == .suspend(reason: .keyPulled))
    }

    @Test("key back: resume, and rebind when a rotation happened meanwhile")
    func restore() throws {
        #expect(plan(.usable(target: v2), try keyring(["v2"], suspended: .keyPulled)) == .resume(rebindTo: nil))
        #expect(plan(.usable(target: v2), try keyring(["v1"], suspended: .keyPulled)) == .resume(rebindTo: v2))
        #expect(plan(.usable(target: v2), try keyring(["v1"], suspended: .keyMissing)) == .resume(rebindTo: v2))
    }

    @Test("purged or missing key: blocked, nothing suspended or deleted")
    func missing() throws {
        #expect(plan(.missing, try keyring(["v1"])) == .blocked(.keyMissing))
    }

    @Test("current version unusable: keep the binding, create new accounts under the fallback")
    func currentUnusable() throws {
        let refusal = KeyVersion.WrapRefusal.expired(expires: t0)
        #expect(plan(.currentUnusable(current: v2, refusal: refusal, fallback: v1), try keyring(["v1"])) == .keep(binding: "v1", because: refusal))
        #expect(plan(.currentUnusable(current: v2, refusal: refusal, fallback: v1), nil) == .create(target: v1))
        #expect(plan(.currentUnusable(current: v2, refusal: refusal, fallback: nil), nil) == .blocked(.noUsableVersion(refusal)))
    }

    @Test("outage and rejected credentials never suspend", arguments: [
        KeyCondition.unreachable(VaultError(.unavailable, "503")), .unreachable(VaultError(.throttled, "429")),
        .accessDenied(VaultError(.forbidden, "403")), .accessDenied(VaultError(.unauthorized, "401")),
    ])
    func outage(condition: KeyCondition) throws {
        guard case .unreachable = plan(condition, try keyring(["v1"])) else {
            Issue.record("expected .unreachable")
            return
        }
    }

    @Test("operator suspensions are left alone")
    func operatorSuspension() throws {
        #expect(plan(.usable(target: v2), try keyring(["v1"], suspended: .operatorRequest)) == .blocked(.operatorSuspension))
    }

    @Test("classifying snapshots")
    func classify() throws {
        let key = try KeyReference("k")
        let now = t0.addingTimeInterval(120)
        #expect(KeyCondition.from(.present(KeyState(key: key, versions: [v1, v2])), now: now) == .usable(target: v2))
        let expired = KeyVersion(id: "v2", created: v2.created, expires: t0.addingTimeInterval(100))
        #expect(KeyCondition.from(.present(KeyState(key: key, versions: [v1, expired])), now: now)
                == .currentUnusable(current: expired, refusal: .expired(expires: t0.addingTimeInterval(100)), fallback: v1))
        #expect(KeyCondition.from(.missing(key), now: now) == .missing)
        #expect(KeyCondition.from(VaultError(.forbidden, "x")) == .accessDenied(VaultError(.forbidden, "x")))
        #expect(KeyCondition.from(VaultError(.throttled, "x")) == .unreachable(VaultError(.throttled, "x")))
    }

    @Test("version usage: referenced by whom, unreferenced since when, safe after the backup horizon")
    func usage() throws {
        let a = try keyring(["v2"]), b = try keyring(["v1", "v2"])
        let first = VersionUsage.compute(versions: [v1, v2], currentID: "v2", keyrings: ["a": a, "b": b], previous: [],
                                         backupRetention: .seconds(86_400), now: t0)
        #expect(first.map(\.accounts) == [["b"], ["a", "b"]])
        let second = VersionUsage.compute(versions: [v1, v2], currentID: "v2", keyrings: ["a": a, "b": a], previous: first,
                                          backupRetention: .seconds(86_400), now: t0.addingTimeInterval(10))
        #expect(second[0].accounts.isEmpty && second[0].unreferencedSince == t0.addingTimeInterval(10) && !second[0].safeToDisable)
        let third = VersionUsage.compute(versions: [v1, v2], currentID: "v2", keyrings: ["a": a, "b": a], previous: second,
                                         backupRetention: .seconds(86_400), now: t0.addingTimeInterval(10 + 86_400))
        #expect(third[0].safeToDisable && third[0].unreferencedSince == t0.addingTimeInterval(10))
        #expect(!third[1].safeToDisable)
    }
}
