import CMKCore
import Foundation
import GRDB
import Glibc

/// The vault service's identities (SPEC §11): the tenant, at most ten CMK administrators, the
/// tenant's service principal with its keys, and the hosts' platform identities, in one SQLite
/// database `identity.sqlite` in the vault service's state directory. `cmkctl` and `cmk-vault`
/// open it at the same time.
///
/// - The file is created with mode 0600 (its `-wal` and `-shm` files get the same mode from
///   SQLite) and refused when group or others can reach it; the directory is created 0700.
/// - WAL mode, `synchronous = FULL`: a change reported done survives a power loss.
/// - Every change is one `BEGIN IMMEDIATE` transaction that takes the write lock first and
///   checks its conditions inside (the ten-administrator limit, unique names), so concurrent
///   processes cannot both pass a check, and a `kill -9` at any point leaves the store as it was
///   before or after the change.
/// - No secret is stored: only SHA-256 of each (``ClientSecret/hash(of:)``).
public final class IdentityStore: Sendable {
    /// The database's file name in the state directory.
    public static let fileName = "identity.sqlite"
    /// At most this many administrators per tenant (SPEC §11).
    public static let maximumAdministrators = 10
    /// A credential's `last_used` is written at most this often (seconds): an authentication
    /// within a minute of the recorded one writes nothing.
    public static let lastUsedGranularity: TimeInterval = 60

    /// The database file.
    public let path: String
    let pool: DatabasePool
    /// The tenant, read once at open (it never changes).
    public let tenant: Tenant

    /// Opens the store in `stateDirectory`, creating the directory (0700), the database (0600),
    /// the schema and the tenant as needed.
    ///
    /// - Parameters:
    ///   - busyTimeout: how long a change waits for another process's write lock (default 10 s).
    ///   - now: the creation date of a new tenant.
    /// - Throws: ``IdentityError`` `.permissions` if the file is accessible to others,
    ///   `.misconfigured` for a schema from a newer build, `.corrupt` for a file that is not the
    ///   store, `.io` otherwise.
    public init(stateDirectory: String, busyTimeout: TimeInterval = 10, now: Date = Date()) throws {
        path = stateDirectory + "/" + Self.fileName
        try PrivateFile.prepare(path, what: "identity store")
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.label = "cmk-identity"
        configuration.foreignKeysEnabled = true
        let path = path
        pool = try Self.database("open the identity store '\(path)'") {
            let pool = try retryWhileTransient(for: busyTimeout, isTransient: { ($0 as? DatabaseError)?.resultCode == .SQLITE_BUSY }) {
                try DatabasePool(path: path, configuration: configuration)
            }
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            return pool
        }
        tenant = try Self.write(pool, "prepare the identity store '\(path)'") { db in
            try IdentitySchema.migrate(db, path: path, now: now)
            guard let row = try Row.fetchOne(db, sql: "SELECT tenant_id, service_principal_client_id, created FROM tenant WHERE id = 1") else {
                throw IdentityError(.corrupt, "the identity store '\(path)' has no tenant row")
            }
            return Tenant(tenantID: row["tenant_id"], servicePrincipalClientID: row["service_principal_client_id"],
                          created: Date(timeIntervalSince1970: row["created"]))
        }
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction: it commits when `body` returns and rolls
    /// back when it throws.
    func write<T>(_ what: String, _ body: (Database) throws -> T) throws -> T {
        try Self.write(pool, what + " in '\(path)'", body)
    }

    /// Runs `body` in a read transaction (a consistent snapshot).
    func read<T>(_ what: String, _ body: (Database) throws -> T) throws -> T {
        try Self.database(what + " in '\(path)'") { try pool.read(body) }
    }

    static func write<T>(_ pool: DatabasePool, _ what: String, _ body: (Database) throws -> T) throws -> T {
        try database(what) {
            try pool.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        }
    }

    /// Runs `body`, turning SQLite's errors into ``IdentityError``s that say what failed.
    static func database<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as IdentityError {
            throw error
        } catch let error as DatabaseError {
            switch error.resultCode {
            case .SQLITE_CORRUPT, .SQLITE_NOTADB:
                throw IdentityError(.corrupt, "\(what) failed: the file is damaged or not an SQLite database; restore it from a backup", underlying: error)
            case .SQLITE_PERM, .SQLITE_READONLY, .SQLITE_AUTH, .SQLITE_CANTOPEN:
                throw IdentityError(.permissions, "\(what) failed: access denied; run as the vault service's user", underlying: error)
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                throw IdentityError(.io, "\(what) failed: another process held the store's write lock for too long; try again", underlying: error)
            case .SQLITE_CONSTRAINT:
                throw IdentityError(.corrupt, "\(what) failed: a change broke the store's constraints", underlying: error)
            default:
                throw IdentityError(.io, "\(what) failed (SQLite extended code \(error.extendedResultCode.rawValue))", underlying: error)
            }
        } catch {
            throw IdentityError(.io, "\(what) failed", underlying: error)
        }
    }
}
