import CMKCore
import CMKSyncer
import Foundation
import Testing

/// The key-state probe's comparison (issue 22): every change a pass would act on starts a pass;
/// nothing else does, and a fault never does.
struct ProbeVerdictTests {
    static let key = try! KeyReference("data-at-rest")
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let passTime = t0.addingTimeInterval(3600)
    static let now = passTime.addingTimeInterval(60)

    static func version(_ id: String, age: TimeInterval, enabled: Bool = true, expires: Date? = nil) -> KeyVersion {
        KeyVersion(id: id, created: t0.addingTimeInterval(age), enabled: enabled, expires: expires)
    }

    static let v1 = version("v1", age: 0)
    static let v2 = version("v2", age: 10)
    static let present = KeySnapshot.present(KeyState(key: key, versions: [v1, v2]))
    static let deleted = KeySnapshot.deleted(DeletedKey(key: key, deletedDate: passTime, scheduledPurgeDate: nil, versions: [v1, v2]))
    static let missing = KeySnapshot.missing(key)

    /// Accounts bound to v2 with DEKs under v1 and v2.
    static func baseline(_ snapshot: KeySnapshot?, referenced: Set<String> = ["v1", "v2"]) -> ProbeBaseline {
        ProbeBaseline(snapshot: snapshot, taken: passTime, referenced: referenced)
    }

    static func verdict(_ before: KeySnapshot?, _ after: KeySnapshot, referenced: Set<String> = ["v1", "v2"]) -> ProbeVerdict {
        ProbeVerdict.compare(.success(after), with: baseline(before, referenced: referenced), now: now)
    }

    static func present(_ versions: KeyVersion...) -> KeySnapshot { .present(KeyState(key: key, versions: versions)) }

    @Test func anUnchangedSnapshotStartsNoPass() {
        #expect(Self.verdict(Self.present, Self.present) == .unchanged)
        #expect(Self.verdict(Self.deleted, Self.deleted) == .unchanged)
        #expect(Self.verdict(Self.missing, Self.missing) == .unchanged)
    }

    @Test func aNewCurrentVersionStartsAPass() {
        let v3 = Self.version("v3", age: 20)
        #expect(Self.verdict(Self.present, Self.present(Self.v1, Self.v2, v3)) == .changed([.newCurrentVersion("v3")]))
    }

    @Test func aReferencedVersionDisabledOrEnabledStartsAPass() {
        let off = Self.version("v1", age: 0, enabled: false)
        #expect(Self.verdict(Self.present, Self.present(off, Self.v2)) == .changed([.versionDisabled("v1")]))
        #expect(Self.verdict(Self.present(off, Self.v2), Self.present) == .changed([.versionEnabled("v1")]))
    }

    @Test func theCurrentVersionIsWatchedEvenWhenNoAccountReferencesIt() {
        let off = Self.version("v2", age: 10, enabled: false)
        #expect(Self.verdict(Self.present, Self.present(Self.v1, off), referenced: []) == .changed([.versionDisabled("v2")]))
    }

    @Test func aReferencedVersionThatExpiredSinceThePassStartsAPass() {
        let expiring = Self.version("v1", age: 0, expires: Self.passTime.addingTimeInterval(30))
        let snapshot = Self.present(expiring, Self.v2)
        #expect(Self.verdict(snapshot, snapshot) == .changed([.versionExpired("v1")]))
        // Already expired when the pass ran: the pass acted on it, nothing new.
        let expired = Self.present(Self.version("v1", age: 0, expires: Self.passTime.addingTimeInterval(-30)), Self.v2)
        #expect(Self.verdict(expired, expired) == .unchanged)
        // Expires after the probe: nothing yet.
        let later = Self.present(Self.version("v1", age: 0, expires: Self.now.addingTimeInterval(30)), Self.v2)
        #expect(Self.verdict(later, later) == .unchanged)
    }

    @Test func aReferencedVersionGoneStartsAPass() {
        #expect(Self.verdict(Self.present, Self.present(Self.v2)) == .changed([.versionGone("v1")]))
    }

    @Test func anUnreferencedVersionChangingStartsNoPass() {
        // The operator disables v1 after every account moved off it: nothing for a pass to do.
        let off = Self.version("v1", age: 0, enabled: false)
        #expect(Self.verdict(Self.present, Self.present(off, Self.v2), referenced: ["v2"]) == .unchanged)
        #expect(Self.verdict(Self.present, Self.present(Self.v2), referenced: ["v2"]) == .unchanged)
    }

    @Test func theKeyDeletedPurgedMissingOrRecoveredStartsAPass() {
        #expect(Self.verdict(Self.present, Self.deleted) == .changed([.keyDeleted]))
        #expect(Self.verdict(Self.deleted, Self.missing) == .changed([.keyMissing]))
        #expect(Self.verdict(Self.present, Self.missing) == .changed([.keyMissing]))
        #expect(Self.verdict(Self.deleted, Self.present) == .changed([.keyRecovered]))
        #expect(Self.verdict(Self.missing, Self.present) == .changed([.keyRecovered]))
    }

    @Test func aVaultThatAnswersAgainAfterAFailedPassStartsAPass() {
        #expect(Self.verdict(nil, Self.present) == .changed([.vaultAnswersAgain]))
    }

    @Test(arguments: [
        VaultError(.throttled, "429 with Retry-After", retryAfter: .seconds(7)),
        VaultError(.throttled, "429 without Retry-After"),
        VaultError(.unavailable, "HTTP 500"), VaultError(.unavailable, "HTTP 503"),
        VaultError(.unavailable, "timed out"), VaultError(.unavailable, "connection refused"),
        VaultError(.unauthorized, "HTTP 401"), VaultError(.forbidden, "HTTP 403"),
        VaultError(.misconfigured, "HTML 404"), VaultError(.corrupt, "truncated JSON"),
        VaultError(.notFound, "a 404 KeyNotFound on a call"), VaultError(.descriptorsExhausted, "EMFILE"),
    ])
    func aFaultNeverActs(error: VaultError) {
        for before in [Self.present, Self.deleted, Self.missing] as [KeySnapshot?] + [nil] {
            let verdict = ProbeVerdict.compare(.failure(error), with: Self.baseline(before), now: Self.now)
            #expect(verdict == .fault(ProbeFault(error)))
            if case .fault(let fault) = verdict {
                #expect(fault.code == error.codeName)
                #expect(fault.retryAfter == error.retryAfter)
            }
        }
    }

    @Test func theBaselineOfAReportReferencesBindingsAndDEKVersions() {
        let account = AccountReport(name: "a", kind: .file, outcome: Outcome(.inSync), binding: "v2", versions: ["v1"], deks: 2,
                                    generation: 1, suspended: false, suspendedSince: nil, previousBinding: nil, milliseconds: 1)
        let report = SyncReport(syncID: "s", started: Self.passTime, finished: Self.passTime, state: .ok, cause: nil, key: "data-at-rest",
                                currentVersion: "v2", targetVersion: "v2", accounts: [account], versions: [], vaultCalls: 1, retries: 0,
                                pulledSince: nil, outageSeconds: nil, pid: 1)
        let baseline = ProbeBaseline(snapshot: Self.present, report: report)
        #expect(baseline.referenced == ["v1", "v2"])
        #expect(baseline.taken == Self.passTime)
    }
}
