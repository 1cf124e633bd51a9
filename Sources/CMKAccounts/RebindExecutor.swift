import CMKCore
import CMKEnvelope
import Foundation

/// Rewraps an account's keyring under a target key version with one conditional write (SPEC §5).
///
/// Every DEK not yet under the target is unwrapped with the version that wraps it and wrapped
/// under the target; a fresh DEK is minted for new writes; the new keyring replaces the old one
/// only if nobody changed it meanwhile. Running it again is a no-op. A lost compare-and-swap
/// re-reads and re-plans.
public struct RebindExecutor: Sendable {
    public let resolver: DEKResolver
    public let clock: any WallClock
    /// How often a lost compare-and-swap is retried before giving up.
    public var maxAttempts = 5

    public init(resolver: DEKResolver, clock: any WallClock) {
        self.resolver = resolver
        self.clock = clock
    }

    /// What a rebind did.
    public struct Result: Hashable, Sendable {
        /// False when the keyring was already bound to the target (a no-op).
        public var changed: Bool
        /// The versions the keyring referenced before.
        public var previousVersions: [String]
        /// The DEK minted for new writes, if any.
        public var mintedDEK: DEKID?
        /// DEKs rewrapped under the target.
        public var rewrapped: Int
        /// The keyring's generation after the rebind.
        public var generation: UInt64
        /// True when this rebind created the account's first keyring.
        public var created: Bool
    }

    /// Binds the account's keyring to `target`, creating the keyring if the account has none.
    public func rebind(_ account: Account, to target: KeyVersion) async throws -> Result {
        guard target.canWrap(at: clock.now()) else {
            throw VaultError(.invalidInput, "version \(target.id) may not wrap now: \(target.wrapRefusal(at: clock.now())!)")
        }
        try await resolver.verify(key: account.key, version: target.id)
        var attempt = 0
        while true {
            attempt += 1
            let current = try await account.driver.readKeyring()
            if let current { try Self.check(current, belongsTo: account) }
            guard let plan = try await plan(account, current: current, target: target) else {
                return Result(changed: false, previousVersions: current?.referencedVersions ?? [], mintedDEK: nil,
                              rewrapped: 0, generation: current?.generation ?? 0, created: false)
            }
            CrashPoints.hit("rebind.before-commit")
            do {
                try await account.driver.replaceKeyring(plan.keyring, expectedGeneration: current?.generation)
                CrashPoints.hit("rebind.after-commit")
                return plan.result
            } catch let error as StorageError where error.code == .conflict || error.code == .alreadyExists {
                if attempt >= maxAttempts { throw error }
            }
        }
    }

    private struct Plan {
        var keyring: Keyring
        var result: Result
    }

    private func plan(_ account: Account, current: Keyring?, target: KeyVersion) async throws -> Plan? {
        let now = clock.now()
        guard var keyring = current else {
            let dek = DEKWrapping.generateDEK()
            let id = DEKID.random()
            let wrapped = try await resolver.wrap(dek, id: id, account: account.name, key: account.key, version: target.id, created: now)
            resolver.cache.insert(dek, account: account.name, dek: id)
            let keyring = Keyring(account: account.name, key: account.key, generation: 1, deks: [wrapped], activeDEK: id)
            return Plan(keyring: keyring, result: Result(changed: true, previousVersions: [], mintedDEK: id, rewrapped: 0, generation: 1, created: true))
        }
        let stale = keyring.deks.indices.filter { keyring.deks[$0].keyVersion != target.id }
        guard !stale.isEmpty else { return nil }
        let previous = keyring.referencedVersions
        for index in stale {
            let old = keyring.deks[index]
            let dek = try await resolver.unwrap(old, account: account.name, key: account.key)
            var rewrapped = try await resolver.wrap(dek, id: old.id, account: account.name, key: account.key, version: target.id, created: old.created)
            rewrapped.created = old.created
            keyring.deks[index] = rewrapped
        }
        // A rotation mints a fresh DEK so that all new data is encrypted under the new version
        // with a key that was never wrapped under an older one.
        var minted: DEKID?
        if current?.active?.keyVersion != target.id {
            let fresh = DEKWrapping.generateDEK()
            let freshID = DEKID.random()
            keyring.deks.append(try await resolver.wrap(fresh, id: freshID, account: account.name, key: account.key, version: target.id, created: now))
            resolver.cache.insert(fresh, account: account.name, dek: freshID)
            keyring.activeDEK = freshID
            minted = freshID
        }
        keyring.generation += 1
        try keyring.validate()
        return Plan(keyring: keyring, result: Result(changed: true, previousVersions: previous, mintedDEK: minted,
                                                     rewrapped: stale.count, generation: keyring.generation, created: false))
    }

    /// Suspends the account (reads and writes refused at once) and drops its cached DEKs.
    /// Returns false if it was already suspended. An account without a keyring has nothing to suspend.
    @discardableResult
    public func suspend(_ account: Account, reason: Suspension.Reason) async throws -> Bool {
        resolver.cache.purge(account: account.name)
        return try await updateSuspension(account) { keyring in
            guard keyring.suspension == nil else { return false }
            keyring.suspension = Suspension(reason: reason, since: clock.now())
            return true
        }
    }

    /// Lifts the suspension. Returns false if the account was not suspended.
    @discardableResult
    public func unsuspend(_ account: Account) async throws -> Bool {
        try await updateSuspension(account) { keyring in
            guard keyring.suspension != nil else { return false }
            keyring.suspension = nil
            return true
        }
    }

    private func updateSuspension(_ account: Account, _ change: (inout Keyring) -> Bool) async throws -> Bool {
        var attempt = 0
        while true {
            attempt += 1
            guard var keyring = try await account.driver.readKeyring() else { return false }
            try Self.check(keyring, belongsTo: account)
            let expected = keyring.generation
            guard change(&keyring) else { return false }
            keyring.generation += 1
            do {
                try await account.driver.replaceKeyring(keyring, expectedGeneration: expected)
                return true
            } catch let error as StorageError where error.code == .conflict {
                if attempt >= maxAttempts { throw error }
            }
        }
    }

    /// Throws unless `keyring` is a valid keyring of `account` bound to the account's key.
    public static func check(_ keyring: Keyring, belongsTo account: Account) throws {
        guard keyring.account == account.name else {
            throw StorageError(.wrongAccount, "the keyring at account '\(account.name)' belongs to account '\(keyring.account)'")
        }
        guard keyring.key == account.key else {
            throw StorageError(.misconfigured, "account '\(account.name)' is bound to key '\(keyring.key)', but the configuration names key '\(account.key)'")
        }
        do { try keyring.validate() } catch {
            throw StorageError(.corrupt, error.reason)
        }
    }
}
