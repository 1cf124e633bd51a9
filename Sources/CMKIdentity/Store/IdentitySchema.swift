import Foundation
import GRDB

/// The identity store's tables and their versioned migrations (`PRAGMA user_version`).
///
/// ```
/// tenant(id = 1, tenant_id, service_principal_client_id, created)   the one tenant
/// clients(client_id, role, name, created)                           administrators, the service principal, platform identities
/// credentials(key_id, client_id, name, secret_hash, hint, start, end, revoked, last_used)
/// ```
/// Dates are seconds since 1970 (REAL). `end` NULL: no end date (administrator and platform
/// secrets, which end when replaced or removed). `revoked` NULL: not revoked. Only SHA-256 of a
/// secret is stored (`secret_hash`, 32 bytes), never the secret.
enum IdentitySchema {
    /// Migration `n` (1-based) takes the store from version `n - 1` to `n`. Never edit one that
    /// shipped; append a new one.
    static let migrations: [String] = [
        """
        CREATE TABLE tenant (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            tenant_id TEXT NOT NULL,
            service_principal_client_id TEXT NOT NULL,
            created REAL NOT NULL
        );
        CREATE TABLE clients (
            client_id TEXT PRIMARY KEY NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('administrator', 'servicePrincipal', 'platform')),
            name TEXT NOT NULL,
            created REAL NOT NULL
        );
        CREATE UNIQUE INDEX clients_role_name ON clients(role, name COLLATE NOCASE);
        CREATE TABLE credentials (
            key_id TEXT PRIMARY KEY NOT NULL,
            client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            secret_hash BLOB NOT NULL CHECK (length(secret_hash) = 32),
            hint TEXT NOT NULL,
            start REAL NOT NULL,
            end REAL,
            revoked REAL,
            last_used REAL
        );
        CREATE INDEX credentials_client ON credentials(client_id);
        """,
    ]

    /// The version this build writes and reads.
    static var version: Int { migrations.count }

    /// Brings the schema up to ``version`` and creates the tenant and its service principal if
    /// missing. Runs inside the caller's `BEGIN IMMEDIATE` transaction, so two processes opening
    /// a new store at once create one tenant.
    static func migrate(_ db: Database, path: String, now: Date) throws {
        let current = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
        guard current <= version else {
            throw IdentityError(.misconfigured, "the identity store '\(path)' has schema version \(current), newer than this build's (\(version)); run the cmk-vault or cmkctl that wrote it, or restore a backup")
        }
        for migration in migrations[current...] { try db.execute(sql: migration) }
        if current != version { try db.execute(sql: "PRAGMA user_version = \(version)") }
        if try Row.fetchOne(db, sql: "SELECT 1 FROM tenant WHERE id = 1") == nil {
            let principal = newID()
            try db.execute(sql: "INSERT INTO tenant(id, tenant_id, service_principal_client_id, created) VALUES (1, ?, ?, ?)",
                           arguments: [newID(), principal, now.timeIntervalSince1970])
            try db.execute(sql: "INSERT INTO clients(client_id, role, name, created) VALUES (?, ?, ?, ?)",
                           arguments: [principal, Role.servicePrincipal.rawValue, "service principal", now.timeIntervalSince1970])
        }
    }

    /// A random (version 4) UUID in lower case, as Entra writes tenant and client ids.
    static func newID() -> String { UUID().uuidString.lowercased() }

    static func date(_ seconds: Double?) -> Date? { seconds.map(Date.init(timeIntervalSince1970:)) }
}
