import CMKCore
import Foundation
import PostgresNIO

/// Rebind leases in the `cmk_leases` table (migration 2; docs/storage.md "Leases"), shared by
/// every daemon whose accounts live in the same database.
///
/// A claim is one autocommitted statement that inserts the lease, or takes it over when it has
/// expired or is already the claimer's:
/// ```sql
/// INSERT INTO cmk_leases … ON CONFLICT (account) DO UPDATE SET …
/// WHERE cmk_leases.expires <= now() OR cmk_leases.token = EXCLUDED.token RETURNING true
/// ```
/// PostgreSQL's row lock on the conflicting row makes two claimers serialise, and the second
/// re-checks the `WHERE` against the first's committed row, so exactly one wins. Nothing is held
/// between statements: no open transaction during the vault round trips, no session state (safe
/// behind a transaction-pooling pgbouncer), and a dropped connection loses nothing but the time
/// left on the lease. Expiry is on the server's clock, so daemons' clocks never disagree about it.
public final class PostgresLeases: RebindLeases {
    /// The process's store for the database, opened on first use (its password file is read then,
    /// so a bad one fails the accounts, not the daemon's start).
    private let store: @Sendable () throws -> PostgresStore

    public init(configuration: PostgresStorageConfiguration) {
        store = { try PostgresStore.shared(configuration) }
    }

    /// Leases on a given store (tests: their own pool).
    init(store: PostgresStore) {
        self.store = { store }
    }

    public func claim(_ account: String, as holder: LeaseHolder, for duration: Duration) async throws -> LeaseClaim {
        let store = try store()
        let seconds = Double(PostgresStore.milliseconds(duration)) / 1000
        let (name, token) = (holder.name, holder.token)
        return try await store.withConnection("claim the rebind lease of account '\(account)'") { [logger = store.logger] connection in
            var granted = false
            for try await _ in try await connection.query("""
                INSERT INTO cmk_leases(account, holder, token, acquired, expires)
                VALUES (\(account), \(name), \(token), now(), now() + make_interval(secs => \(seconds)))
                ON CONFLICT (account) DO UPDATE
                SET holder = EXCLUDED.holder, token = EXCLUDED.token, acquired = EXCLUDED.acquired, expires = EXCLUDED.expires
                WHERE cmk_leases.expires <= now() OR cmk_leases.token = EXCLUDED.token
                RETURNING true
                """, logger: logger) { granted = true }
            if granted { return .granted }
            // Someone else's unexpired lease: who, and until when (for the report). It may have
            // expired or been released since; the claim is still refused for this pass.
            var other: (String, Date)?
            for try await row in try await connection.query(
                "SELECT holder, expires FROM cmk_leases WHERE account = \(account)", logger: logger).decode((String, Date).self) {
                other = row
            }
            return .heldElsewhere(holder: other?.0 ?? "unknown", until: other?.1 ?? Date())
        }
    }

    public func release(_ account: String, as holder: LeaseHolder) async throws {
        let store = try store()
        let token = holder.token
        try await store.withConnection("release the rebind lease of account '\(account)'") { [logger = store.logger] connection in
            try await connection.query("""
                UPDATE cmk_leases SET expires = now() WHERE account = \(account) AND token = \(token) AND expires > now()
                """, logger: logger)
        }
    }

    public func lastHolders(of accounts: [String]) async throws -> [String: String] {
        guard !accounts.isEmpty else { return [:] }
        let store = try store()
        return try await store.withConnection("read who last handled the accounts") { [logger = store.logger] connection in
            var holders: [String: String] = [:]
            for try await (account, holder) in try await connection.query(
                "SELECT account, holder FROM cmk_leases WHERE account = ANY(\(accounts))", logger: logger).decode((String, String).self) {
                holders[account] = holder
            }
            return holders
        }
    }
}
