import Foundation

/// Work sharing between daemons that serve the same accounts (SPEC §12): before a pass writes an
/// account's keyring it claims that account's lease, and a daemon that cannot get it leaves the
/// account to the holder this pass. Only drivers whose storage several daemons share implement
/// it (PostgreSQL); an account without leases is written without one.
///
/// Leases are an optimisation, never the safety: the keyring's compare-and-swap (SPEC §4) still
/// decides every write, so a lease bug costs a wasted unwrap, never a torn or rolled-back keyring.
public protocol RebindLeases: AnyObject, Sendable {
    /// Claims `account`'s lease for `holder` until `duration` from now (on the shared store's
    /// clock): granted when the lease is free, expired, or already `holder`'s (same token).
    func claim(_ account: String, as holder: LeaseHolder, for duration: Duration) async throws -> LeaseClaim

    /// Ends `holder`'s lease on `account` now, keeping who held it last. A lease held by someone
    /// else is left alone.
    func release(_ account: String, as holder: LeaseHolder) async throws

    /// The daemon that last held the lease of each of `accounts` (those that ever had one).
    func lastHolders(of accounts: [String]) async throws -> [String: String]
}

/// Who claims a lease: the daemon's `sync.instance-name` (shown to operators) and a token drawn
/// at start, so two processes given the same name never share a lease.
public struct LeaseHolder: Hashable, Sendable, Codable {
    public var name: String
    public var token: String

    public init(name: String, token: String) {
        self.name = name
        self.token = token
    }
}

/// The answer to a claim.
public enum LeaseClaim: Hashable, Sendable {
    /// The claimer holds the lease now.
    case granted
    /// Another daemon holds an unexpired lease.
    case heldElsewhere(holder: String, until: Date)
}
