import CMKAccounts
import CMKAudit
import CMKConfiguration
import CMKCore
import CMKEnvelope
import CMKSyncer
import Foundation

/// The service graph built from one configuration: the vault, the accounts, the DEK cache, the
/// rebind executor and the pass settings. Built by ``Daemon/build(configuration:environment:)``
/// so that tests construct exactly what the executable runs.
public struct Daemon: Sendable {
    public let configuration: SyncerConfiguration
    /// The vault behind a call counter.
    public let vault: CountingKeyVault
    /// The same vault when it allows key management (the local vault), for `cmkctl keys`.
    public let administration: (any KeyVaultAdministration)?
    public let accounts: [Account]
    public let cache: DEKCache
    public let resolver: DEKResolver
    public let executor: RebindExecutor
    public let dataPlane: DataPlane
    public let settings: SyncPass.Settings
    public let state: StateStore
    public let securityLog: SecurityLog
    public let clock: any WallClock

    /// The account with this name.
    public func account(named name: String) -> Account? { accounts.first { $0.name == name } }

    /// A sync pass over every account.
    public func makePass(stopRequested: @escaping @Sendable () -> Bool = { false },
                         progress: @escaping @Sendable () -> Void = {}) -> SyncPass {
        SyncPass(settings: settings, accounts: accounts, vault: vault, executor: executor, clock: clock,
                 stopRequested: stopRequested, progress: progress)
    }
}
