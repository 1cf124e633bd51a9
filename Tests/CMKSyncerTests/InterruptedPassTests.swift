import CMKAccounts
import CMKCore
import CMKSyncer
import CMKTesting
import Foundation
import Synchronization
import Testing

/// Issue 24, defect 2: a pass cut short by a stop is reported as incomplete, lists every account,
/// and never updates version usage (nor says a version is safe to disable).
@Suite("Sync pass: a pass cut short, and accounts whose keyring could not be read")
struct InterruptedPassTests {
    /// A pass on `h`'s accounts with no backup horizon (so a wrong usage shows at once as "safe to
    /// disable") and one account at a time; `stopAfter` accounts finished, the daemon is stopping.
    func pass(_ h: PassHarness, stopAfter: Int? = nil) async -> (report: SyncReport, events: [SyncEvent]) {
        let done = Mutex(0)
        var settings = h.settings
        settings.backupRetention = .zero
        settings.concurrency = 1
        let pass = SyncPass(settings: settings, accounts: h.accounts, vault: h.vault, executor: h.executor, clock: h.clock,
                            sleep: { _ in }, random: { 0.5 },
                            stopRequested: { stopAfter.map { limit in done.withLock { $0 } >= limit } ?? false },
                            progress: { done.withLock { $0 += 1 } })
        let result = await pass.run(previous: h.previous.withLock { $0 })
        h.previous.withLock { $0 = result.report }
        return result
    }

    @Test("a stop after 2 of 6 accounts: degraded and interrupted, all 6 listed, the 4 unreached as not-reached with their last binding; usage kept, nothing safe to disable")
    func stopMidPass() async throws {
        let names = ["a-1", "a-2", "a-3", "a-4", "a-5", "a-6"]
        let h = try PassHarness(accounts: names)
        let v1 = try await h.memory.createKey(h.key, size: .bits2048)
        let (first, _) = await pass(h)
        #expect(first.state == .ok && first.interrupted == nil && first.inSyncCount == 6)
        h.clock.advance(by: .seconds(60))
        let v2 = try await h.memory.rotateKey(h.key)

        let (cut, events) = await pass(h, stopAfter: 2)
        #expect(cut.state == .degraded, "a cut-short pass is not ok: \(cut.state) \(cut.cause ?? "")")
        #expect(cut.interrupted == "the daemon was stopping")
        #expect(cut.cause?.contains("4 of 6 account(s) not reached") == true, "\(cut.cause ?? "")")
        #expect(cut.accounts.map(\.name) == names, "every configured account is listed")
        #expect(cut.inSyncCount == 2)
        let unreached = cut.accounts.filter { $0.outcome.code == .notReached }
        #expect(unreached.map(\.name) == ["a-3", "a-4", "a-5", "a-6"])
        for account in unreached {
            #expect(account.binding == v1.id && account.versions == [v1.id] && account.generation != nil && account.deks == 1)
            #expect(account.outcome.detail?.contains("as of pass \(first.syncID)") == true)
        }
        #expect(cut.accounts.filter { $0.outcome.code == .rebound }.allSatisfy { $0.binding == v2.id })
        #expect(cut.versions == first.versions, "usage stays as the last complete pass computed it")
        #expect(cut.versions.allSatisfy { !$0.safeToDisable })
        #expect(!events.contains { $0.kind == .versionSafeToDisable })

        // The next complete pass reaches everyone; only now is the old version unreferenced.
        let (next, nextEvents) = await pass(h)
        #expect(next.state == .ok && next.interrupted == nil && next.inSyncCount == 6)
        #expect(next.accounts.allSatisfy { $0.binding == v2.id })
        #expect(try #require(next.versions.first { $0.version == v1.id }).safeToDisable)
        #expect(nextEvents.contains { $0.kind == .versionSafeToDisable && $0.version == v1.id })
    }

    @Test("a stop before any account starts: every account not-reached, usage kept")
    func stopBeforeAnyAccount() async throws {
        let h = try PassHarness()
        let v1 = try await h.memory.createKey(h.key, size: .bits2048)
        let (first, _) = await pass(h)
        let (cut, events) = await pass(h, stopAfter: 0)
        #expect(cut.state == .degraded && cut.interrupted != nil)
        #expect(cut.accounts.count == 3 && cut.accounts.allSatisfy { $0.outcome.code == .notReached && $0.binding == v1.id })
        #expect(cut.versions == first.versions)
        #expect(events.isEmpty)
    }

    @Test("an account whose keyring cannot be read still uses the versions it was last seen with: the old version is not safe to disable")
    func unreadKeyringKeepsItsVersions() async throws {
        let broken = RefusingDriver(account: "broken")
        let h = try PassHarness(accounts: ["a", "broken"], drivers: ["broken": broken])
        let v1 = try await h.memory.createKey(h.key, size: .bits2048)
        await pass(h)
        let v2 = try await h.memory.rotateKey(h.key)
        broken.refuseReads.withLock { $0 = true }
        let (report, events) = await pass(h)
        #expect(h.outcomes(report) == [.rebound, .failed])
        let old = try #require(report.versions.first { $0.version == v1.id })
        #expect(old.accounts == ["broken"] && !old.safeToDisable)
        #expect(try #require(report.versions.first { $0.version == v2.id }).accounts == ["a"])
        #expect(!events.contains { $0.kind == .versionSafeToDisable })
    }
}
