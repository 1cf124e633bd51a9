import CMKCore
import Foundation
import Logging
import PostgresNIO

/// The driver's tables and their versioned migrations (docs/storage.md, "PostgreSQL driver").
///
/// `schema_migrations(version, description, applied_at)` lists the migrations applied. Every
/// daemon runs ``migrate(_:logger:)`` when its pool first opens: in one transaction holding a
/// transaction-level advisory lock (so daemons starting together migrate once), it applies
/// each migration newer than the highest recorded one, and refuses a database migrated by a
/// newer cmk-syncer. Migrations are only ever appended to ``migrations``.
enum PostgresSchema {
    struct Migration {
        let version: Int
        let description: String
        let statements: [String]
    }

    /// The advisory lock key that serialises migrations: "cmk-syncer" read as ASCII digits.
    static let migrationLock: Int64 = 0x636D_6B2D_7379_6E63

    static let migrations: [Migration] = [
        Migration(version: 1, description: "keyrings, objects, object chunks, staged writes, retired revisions", statements: [
            """
            CREATE TABLE cmk_keyrings (
                account text PRIMARY KEY,
                generation bigint NOT NULL CHECK (generation >= 1),
                json bytea NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE cmk_objects (
                account text NOT NULL,
                name text NOT NULL,
                revision text NOT NULL UNIQUE,
                size bigint NOT NULL CHECK (size >= 0),
                PRIMARY KEY (account, name)
            )
            """,
            """
            CREATE TABLE cmk_object_chunks (
                revision text NOT NULL,
                seq integer NOT NULL,
                bytes bytea NOT NULL,
                PRIMARY KEY (revision, seq)
            )
            """,
            // Encrypted bytes do not compress: store them out of line without trying.
            "ALTER TABLE cmk_object_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL",
            """
            CREATE TABLE cmk_staging (
                revision text PRIMARY KEY,
                account text NOT NULL,
                name text NOT NULL,
                touched timestamptz NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE cmk_retired (
                revision text PRIMARY KEY,
                account text NOT NULL,
                retired timestamptz NOT NULL DEFAULT now()
            )
            """,
        ]),
        Migration(version: 2, description: "rebind leases shared by the daemons serving the same accounts", statements: [
            // One row per account that was ever leased. `expires` on the server's clock (one clock
            // for every daemon); `token` tells two processes with the same name apart; the row stays
            // after release (expires = released) so `holder` names the daemon that last handled it.
            """
            CREATE TABLE cmk_leases (
                account text PRIMARY KEY,
                holder text NOT NULL,
                token text NOT NULL,
                acquired timestamptz NOT NULL,
                expires timestamptz NOT NULL
            )
            """,
        ]),
    ]

    static var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Applies the missing migrations in one transaction; refuses a database from a newer cmk-syncer.
    static func migrate(_ connection: PostgresConnection, logger: Logger) async throws {
        try await PostgresStore.transaction(on: connection, logger: logger) { connection in
            for try await _ in try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLock))", logger: logger) {}
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY,
                    description text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """, logger: logger)
            var current = 0
            for try await version in try await connection.query("SELECT coalesce(max(version), 0) FROM schema_migrations", logger: logger).decode(Int.self) {
                current = version
            }
            guard current <= latestVersion else {
                throw StorageError(.misconfigured, "the PostgreSQL database has schema version \(current), newer than this cmk-syncer's (\(latestVersion)); run the cmk-syncer that migrated it, or restore a backup")
            }
            for migration in migrations where migration.version > current {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO schema_migrations(version, description) VALUES (\(migration.version), \(migration.description))", logger: logger)
                logger.info("Migrated the PostgreSQL storage schema.", metadata: ["schema_version": "\(migration.version)"])
            }
        }
    }

    /// Removes staged writes nobody touched for `staleStaging` (a writer that crashed) and the
    /// chunks of revisions retired longer than `readerGrace` ago, with their orphaned chunks.
    static func sweep(_ connection: PostgresConnection, logger: Logger, staleStaging: Duration, readerGrace: Duration) async throws {
        let staleSeconds = Double(staleStaging.components.seconds)
        let graceSeconds = Double(readerGrace.components.seconds)
        try await PostgresStore.transaction(on: connection, logger: logger) { connection in
            try await connection.query("""
                DELETE FROM cmk_staging WHERE touched < now() - make_interval(secs => \(staleSeconds))
                """, logger: logger)
            try await connection.query("""
                DELETE FROM cmk_retired WHERE retired < now() - make_interval(secs => \(graceSeconds))
                """, logger: logger)
            try await connection.query("""
                DELETE FROM cmk_object_chunks c
                WHERE NOT EXISTS (SELECT 1 FROM cmk_objects o WHERE o.revision = c.revision)
                  AND NOT EXISTS (SELECT 1 FROM cmk_staging s WHERE s.revision = c.revision)
                  AND NOT EXISTS (SELECT 1 FROM cmk_retired r WHERE r.revision = c.revision)
                """, logger: logger)
        }
    }
}
