import CMKAccounts
import CMKCore
import CMKEnvelope
import Foundation

/// One sync pass (SPEC §5): one vault snapshot, a plan per account, plans executed with bounded
/// concurrency, a report with every outcome. One account's failure never stops another.
public struct SyncPass: Sendable {
    /// What a pass needs to know beyond the accounts.
    public struct Settings: Hashable, Sendable {
        public var key: KeyReference
        public var policy: ReconcilePolicy
        public var concurrency: Int
        public var retry: RetryPolicy
        /// How long an unreferenced version stays "not yet safe to disable" (backups). Default 14 days.
        public var backupRetention: Duration
        /// A current version expiring within this is warned about (zero: never). Default 30 days.
        public var expiryWarning: Duration
        /// This daemon (`sync.instance-name` and a token drawn at start): claims leases, and is
        /// named in the report as the daemon that handled an account.
        public var instance: LeaseHolder
        /// How long a claimed rebind lease lasts (`postgres.lease-time`). Default 2 minutes.
        public var leaseTime: Duration

        public init(key: KeyReference, policy: ReconcilePolicy = .init(), concurrency: Int = 4,
                    retry: RetryPolicy = .init(), backupRetention: Duration = .seconds(14 * 86_400),
                    expiryWarning: Duration = .seconds(30 * 86_400),
                    instance: LeaseHolder = LeaseHolder(name: ProcessInfo.processInfo.hostName, token: SyncPass.newID()),
                    leaseTime: Duration = .seconds(120)) {
            self.key = key
            self.policy = policy
            self.concurrency = concurrency
            self.retry = retry
            self.backupRetention = backupRetention
            self.expiryWarning = expiryWarning
            self.instance = instance
            self.leaseTime = leaseTime
        }
    }

    public let settings: Settings
    public let accounts: [Account]
    public let vault: CountingKeyVault
    public let executor: RebindExecutor
    public let clock: any WallClock
    /// Sleeps between snapshot retries; tests record the delays instead of waiting. The default,
    /// ``Heartbeat/sleep(for:)``, keeps the watchdog's heartbeat going and ends at once on a stop.
    public let sleep: @Sendable (Duration) async throws -> Void
    /// A random number in [0, 1) for jitter.
    public let random: @Sendable () -> Double
    /// True once the daemon is stopping: accounts in flight finish, no new ones start.
    public let stopRequested: @Sendable () -> Bool
    /// Called whenever the pass makes progress (an account done, a retry slept): the watchdog's heartbeat.
    public let progress: @Sendable () -> Void
    /// Told the snapshot the pass acts on (nil when it could not get one): the key-state probe's baseline.
    public var observed: @Sendable (KeySnapshot?) -> Void = { _ in }

    public init(settings: Settings, accounts: [Account], vault: CountingKeyVault, executor: RebindExecutor, clock: any WallClock,
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Heartbeat.sleep(for: $0) },
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
                stopRequested: @escaping @Sendable () -> Bool = { false },
                progress: @escaping @Sendable () -> Void = {}) {
        self.settings = settings
        self.accounts = accounts
        self.vault = vault
        self.executor = executor
        self.clock = clock
        self.sleep = sleep
        self.random = random
        self.stopRequested = stopRequested
        self.progress = progress
    }

    /// Runs the pass. Never throws: every failure becomes an outcome.
    /// - Parameter previous: the last pass's report (from memory or the state file), for
    ///   transitions (rotation noticed, restore and outage length) and version-usage history.
    public func run(syncID: String = SyncPass.newID(), previous: SyncReport?) async -> (report: SyncReport, events: [SyncEvent]) {
        let started = clock.now()
        let callsBefore = vault.calls
        let (condition, versions, retries) = await observe()
        // Accounts an earlier pass saw with a keyring must still have one (a vanished keyring is
        // never replaced by a new one).
        let hadKeyring = Set((previous?.accounts ?? []).filter { $0.generation != nil }.map(\.name))
        let (executed, unreached) = await executeAll(condition: condition, versions: versions, hadKeyring: hadKeyring)
        var outcomes = executed + unreached.map { Self.notReached($0, previous: previous) }
        await fillHandlers(&outcomes, previous: previous)
        outcomes.sort { $0.report.name < $1.report.name }
        let finished = clock.now()
        let keyrings = Dictionary(outcomes.compactMap { o in o.keyring.map { (o.report.name, $0) } }, uniquingKeysWith: { a, _ in a })
        return assemble(syncID: syncID, started: started, finished: finished, condition: condition, versions: versions,
                        outcomes: outcomes, keyrings: keyrings, unreached: unreached.count, previous: previous,
                        vaultCalls: vault.calls - callsBefore, retries: retries)
    }

    /// A fresh pass identifier (32 hex digits) from `SystemRandomNumberGenerator`, which is
    /// getrandom(2) on Linux and needs no file descriptor: Foundation's `UUID()` reads
    /// /dev/urandom and returns all zeros when the process is out of descriptors.
    public static func newID() -> String {
        var random = SystemRandomNumberGenerator()
        return [random.next(), random.next()].map { (word: UInt64) in
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    // MARK: Observe

    private func observe() async -> (KeyCondition, [KeyVersion], Int) {
        var retries = 0
        var attempt = 0
        while true {
            attempt += 1
            do {
                let snapshot = try await vault.snapshot(of: settings.key)
                let versions: [KeyVersion]
                switch snapshot {
                case .present(let state): versions = state.versions
                case .deleted(let deleted): versions = deleted.versions
                case .missing: versions = []
                }
                observed(snapshot)
                return (KeyCondition.from(snapshot, now: clock.now()), versions, retries)
            } catch {
                let vaultError = VaultError.from(error, "snapshot of key '\(settings.key)' failed")
                guard vaultError.category == .transient, attempt < settings.retry.attempts, !Task.isCancelled, !stopRequested() else {
                    observed(nil)
                    return (KeyCondition.from(vaultError), [], retries)
                }
                let delay = settings.retry.delay(retry: attempt, retryAfter: vaultError.retryAfter, unit: random())
                do { try await sleep(delay) } catch {
                    observed(nil)
                    return (KeyCondition.from(vaultError), [], retries)
                }
                progress()
                retries += 1
            }
        }
    }

    // MARK: Execute

    struct AccountResult: Sendable {
        var report: AccountReport
        var events: [SyncEvent]
        var keyring: Keyring?
        var blocker: AccountPlan.Blocker?
        /// When the account was suspended before this pass, if it was.
        var suspendedBefore: Date?
    }

    /// Executes every account's plan; on shutdown finishes the accounts in flight, starts no new
    /// ones and returns those it did not start as `unreached`.
    private func executeAll(condition: KeyCondition, versions: [KeyVersion], hadKeyring: Set<String>) async
        -> (results: [AccountResult], unreached: [Account]) {
        await withTaskGroup(of: AccountResult?.self) { group in
            var results: [AccountResult] = []
            var pending = accounts[...]
            for _ in 0..<max(1, settings.concurrency) {
                guard !Task.isCancelled, !stopRequested(), let account = pending.popFirst() else { break }
                group.addTask { await execute(account, condition: condition, versions: versions, hadKeyring: hadKeyring.contains(account.name)) }
            }
            while let result = await group.next() {
                progress()
                if let result { results.append(result) }
                // On shutdown, finish the accounts in flight but start no new ones.
                if !Task.isCancelled, !stopRequested(), let account = pending.popFirst() {
                    group.addTask { await execute(account, condition: condition, versions: versions, hadKeyring: hadKeyring.contains(account.name)) }
                }
            }
            return (results, Array(pending))
        }
    }

    /// An account a stopping pass did not start: listed with the binding, versions and generation
    /// the previous report knew (so the next pass still knows it had a keyring), outcome `not-reached`.
    static func notReached(_ account: Account, previous: SyncReport?) -> AccountResult {
        let known = previous?.accounts.first { $0.name == account.name }
        let asOf = previous.map { "as of pass \($0.syncID)" } ?? "unknown (no earlier pass)"
        let outcome = Outcome(.notReached, detail: "the pass stopped before this account (the daemon is stopping); binding and versions \(asOf)")
        let report = AccountReport(name: account.name, kind: account.kind, outcome: outcome, binding: known?.binding,
                                   versions: known?.versions ?? [], deks: known?.deks ?? 0, generation: known?.generation,
                                   suspended: known?.suspended ?? false, suspendedSince: known?.suspendedSince,
                                   previousBinding: nil, milliseconds: 0)
        return AccountResult(report: report, events: [], keyring: nil, blocker: nil, suspendedBefore: nil)
    }

    private func execute(_ account: Account, condition: KeyCondition, versions: [KeyVersion], hadKeyring: Bool) async -> AccountResult {
        let started = ContinuousClock.now
        var events: [SyncEvent] = []
        var blocker: AccountPlan.Blocker?
        var before: Keyring?
        var wrote = true
        var outcome: Outcome
        var handledBy: String?
        do {
            before = try await account.driver.readKeyring()
            // The checks a rebind makes hold for an account in sync too: a keyring of another
            // account or bound to another key is never reported in sync.
            if let before { try RebindExecutor.check(before, belongsTo: account) }
            // Only an empty account may get its first keyring: objects without a keyring, or a
            // keyring an earlier pass saw, mean the keyring vanished and the data cannot be read.
            var expected = false
            if before == nil { expected = hadKeyring ? true : try await !account.driver.listObjects().isEmpty }
            let plan = Reconciler.plan(condition, versions: versions, keyring: before, keyringExpected: expected,
                                       policy: settings.policy, now: clock.now())
            wrote = plan.writes
            // A write to storage other daemons share is done under the account's lease; an
            // account another daemon holds is left to it this pass (its CAS would decide anyway).
            if plan.writes, let leases = account.leases {
                switch try await leases.claim(account.name, as: settings.instance, for: settings.leaseTime) {
                case .granted:
                    handledBy = settings.instance.name
                    do {
                        (outcome, blocker) = try await perform(plan, on: account, keyring: before, events: &events)
                    } catch {
                        try? await leases.release(account.name, as: settings.instance)
                        throw error
                    }
                    // Released at once, so a daemon that starts later sees the account in sync
                    // instead of waiting out the lease; a failed release only lets the lease run out.
                    try? await leases.release(account.name, as: settings.instance)
                case .heldElsewhere(let holder, let until):
                    wrote = false
                    handledBy = holder
                    outcome = Outcome(.handledElsewhere, detail: "daemon \(holder) holds this account's rebind lease until \(until.ISO8601Format()); left to it this pass")
                }
            } else {
                if plan.writes { handledBy = settings.instance.name }
                (outcome, blocker) = try await perform(plan, on: account, keyring: before, events: &events)
            }
        } catch {
            let categorized = error as? any CategorizedError
            outcome = Outcome(.failed, reason: categorized?.codeName ?? "internal", detail: String(describing: error))
            events.append(SyncEvent(.accountFailed, "Account could not be synced.", account: account.name,
                                    fields: ["reason": outcome.reason ?? "", "detail": outcome.detail ?? ""]))
        }
        // Re-read only when the plan may have written: an idle pass reads each keyring once.
        let after = wrote ? ((try? await account.driver.readKeyring()) ?? before) : before
        let elapsed = ContinuousClock.now - started
        var report = AccountReport(
            name: account.name, kind: account.kind, outcome: outcome, binding: after?.binding,
            versions: after?.referencedVersions ?? [], deks: after?.deks.count ?? 0, generation: after?.generation,
            suspended: after?.suspension != nil, suspendedSince: after?.suspension?.since,
            previousBinding: before?.binding != after?.binding ? before?.binding : nil,
            milliseconds: Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000))
        report.handledBy = handledBy
        return AccountResult(report: report, events: events, keyring: after, blocker: blocker, suspendedBefore: before?.suspension?.since)
    }

    private func perform(_ plan: AccountPlan, on account: Account, keyring: Keyring?, events: inout [SyncEvent]) async throws
        -> (Outcome, AccountPlan.Blocker?) {
        switch plan {
        case .inSync:
            return (Outcome(.inSync), nil)
        case .create(let target):
            _ = try await executor.rebind(account, to: target)
            events.append(SyncEvent(.accountCreated, "Account keyring created.", account: account.name, version: target.id))
            return (Outcome(.rebound), nil)
        case .rebind(let target, _):
            let result = try await executor.rebind(account, to: target)
            if result.changed {
                events.append(SyncEvent(.accountRebound, "Account rebound to the current key version.", account: account.name,
                                        version: target.id, previousVersion: keyring?.binding,
                                        fields: ["rewrapped_deks": "\(result.rewrapped)", "minted_dek": result.mintedDEK?.description ?? ""]))
                return (Outcome(.rebound), nil)
            }
            return (Outcome(.inSync), nil)
        case .suspend(let reason):
            if try await executor.suspend(account, reason: reason) {
                events.append(SyncEvent(.accountSuspended, "Account suspended: reads and writes are refused.", account: account.name,
                                        version: keyring?.binding, fields: ["reason": reason.rawValue]))
            }
            return (Outcome(.suspended, reason: reason.rawValue), nil)
        case .suspendLater(let at):
            return (Outcome(.failed, reason: "key-pulled", detail: "the key was pulled; the account suspends at \(at.ISO8601Format()) once cached DEKs expire"), nil)
        case .staySuspended(let suspension):
            return (Outcome(.suspended, reason: suspension.reason.rawValue), nil)
        case .resume(let target):
            // Verify that the vault unwraps again before readers are let back in.
            if let keyring, let active = keyring.active {
                executor.resolver.cache.purge(account: account.name)
                _ = try await executor.resolver.unwrap(active, account: account.name, key: account.key)
            }
            try await executor.unsuspend(account)
            events.append(SyncEvent(.accountResumed, "Account suspension lifted: the key unwraps again.", account: account.name,
                                    version: keyring?.binding))
            if let target {
                let result = try await executor.rebind(account, to: target)
                if result.changed {
                    events.append(SyncEvent(.accountRebound, "Account rebound to the current key version.", account: account.name,
                                            version: target.id, previousVersion: keyring?.binding))
                }
            }
            return (Outcome(.rebound), nil)
        case .keep(let binding, let refusal):
            return (Outcome(.inSync, detail: "current version cannot wrap (\(refusal)); keeping binding \(binding)"), nil)
        case .blocked(let blocker):
            return (Self.outcome(for: blocker, account: account, events: &events), blocker)
        case .unreachable(let error):
            return (Outcome(.failed, reason: error.codeName, detail: error.reason), nil)
        }
    }

    private static func outcome(for blocker: AccountPlan.Blocker, account: Account, events: inout [SyncEvent]) -> Outcome {
        switch blocker {
        case .versionsDisabledInUse(let versions):
            events.append(SyncEvent(.versionDisabledInUse, "A disabled key version still wraps DEKs of this account.",
                                    account: account.name, version: versions.joined(separator: ","),
                                    fields: ["action": "re-enable version \(versions.joined(separator: ", ")) in the vault"]))
            return Outcome(.failed, reason: "version-disabled-in-use",
                           detail: "version \(versions.joined(separator: ", ")) is disabled but still wraps DEKs of this account: re-enable it in the vault")
        case .versionsUnknown(let versions):
            let list = versions.joined(separator: ", ")
            return failed(account, .versionUnknown, reason: "version-unknown", events: &events,
                          detail: "the keyring's DEKs are wrapped under version \(list), which the key does not have: the keyring belongs to another key or vault, or was damaged; restore it from a backup")
        case .keyringMissing:
            return failed(account, .keyringMissing, reason: StorageError.Code.keyringMissing.description, events: &events,
                          detail: "the account's keyring is missing although the account had one (it holds objects, or an earlier pass saw its keyring); its data cannot be read until the keyring is restored from a backup; no new keyring is made")
        case .keyMissing:
            return Outcome(.failed, reason: "key-missing", detail: "the key is purged or missing; local data is kept")
        case .pulledBeforeCreation:
            return Outcome(.failed, reason: "key-pulled", detail: "the key was pulled before this account had a keyring")
        case .noUsableVersion(let refusal):
            return Outcome(.failed, reason: "no-usable-version", detail: "no key version may wrap (current: \(refusal)); the account has no keyring yet")
        case .operatorSuspension:
            return Outcome(.suspended, reason: Suspension.Reason.operatorRequest.rawValue)
        }
    }

    private static func failed(_ account: Account, _ kind: SyncEvent.Kind, reason: String, events: inout [SyncEvent],
                               detail: String) -> Outcome {
        let message = kind == .keyringMissing ? "The account's keyring is missing; no new keyring is made."
            : "The account's keyring names key versions the vault does not have."
        events.append(SyncEvent(kind, message, account: account.name, fields: ["reason": reason, "detail": detail]))
        return Outcome(.failed, reason: reason, detail: detail)
    }
}
