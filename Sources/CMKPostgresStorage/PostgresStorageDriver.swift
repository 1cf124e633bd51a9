import CMKCore
import Foundation
import PostgresNIO
import Synchronization

/// Stores accounts in one PostgreSQL database (SPEC §4, §10 "postgres"), through PostgresNIO.
///
/// Every account served from one database shares the daemon's ``PostgresStore`` (one pool).
/// Tables (see ``PostgresSchema`` and `docs/storage.md`):
/// ```
/// cmk_keyrings(account, generation, json)          one keyring row per account
/// cmk_objects(account, name, revision, size)       committed objects
/// cmk_object_chunks(revision, seq, bytes)          object bytes in rows of at most 1 MiB
/// cmk_staging(revision, account, name, touched)    writers that have not committed yet
/// cmk_retired(revision, account, retired)          replaced revisions kept for open readers
/// ```
///
/// The keyring is replaced by one conditional statement on its generation (the compare-and-swap
/// of SPEC §4): `UPDATE … WHERE account = $1 AND generation = $2 RETURNING` — no row returned
/// means another writer got there first (`.conflict`); the first keyring is an
/// `INSERT … ON CONFLICT DO NOTHING RETURNING`. An object is published in one transaction that
/// points `cmk_objects` at its staged revision, so a crash at any point leaves the old or the
/// new object, never a mix.
public final class PostgresStorageDriver: StorageDriver {
    public let account: String
    public let store: PostgresStore

    /// The size of one `cmk_object_chunks` row, and the largest chunk a reader returns.
    static let chunkSize = 1 << 20

    /// The decoded keyring of the last read, with the identity of the row it came from.
    struct Kept: Sendable {
        /// `cmk_keyrings.generation`: every write through a driver moves it (the CAS).
        let generation: Int64
        /// The row version's `xmin`: moves with any write to the row, also one made outside the
        /// driver (a restore, a DBA's UPDATE) that left the generation as it was.
        let version: Int64
        let keyring: Keyring
    }
    private let kept = Mutex<Kept?>(nil)
    /// Keyrings this driver decoded (tests: a kept keyring is served without decoding).
    let decodes = Mutex(0)

    public init(store: PostgresStore, account: String) {
        self.store = store
        self.account = account
    }

    var server: String { store.configuration.serverDescription }

    // MARK: Keyring

    public func readKeyring() async throws -> Keyring? {
        let account = account
        let held = kept.withLock { $0 }
        // One round trip either way; the JSON comes back only when the row is not the kept one
        // (docs/storage.md "Kept keyrings"): same generation and same row version (xmin).
        let row = try await store.withConnection("read the keyring of account '\(account)'") { [logger = store.logger] connection in
            var found: (Int64, Int64, Data?)?
            for try await row in try await connection.query("""
                SELECT generation, xmin::text::bigint,
                       CASE WHEN generation = \(held?.generation ?? -1) AND xmin::text::bigint = \(held?.version ?? -1) THEN NULL ELSE json END
                FROM cmk_keyrings WHERE account = \(account)
                """, logger: logger).decode((Int64, Int64, Data?).self) {
                found = row
            }
            return found
        }
        guard let (generation, version, json) = row else {
            kept.withLock { $0 = nil }
            return nil
        }
        guard let json else {
            // The server compared both and sent no JSON: the row is the one kept.
            guard let held, held.generation == generation, held.version == version else {
                throw StorageError(.corrupt, "keyring row of account '\(account)' in \(server) came back without its JSON")
            }
            return held.keyring
        }
        let keyring = try KeyringJSON.decode(json, account: account, source: "keyring row of account '\(account)' in \(server)")
        guard keyring.generation == UInt64(clamping: generation), generation >= 1 else {
            throw StorageError(.corrupt, "keyring row of account '\(account)' in \(server) says generation \(generation) but its JSON says \(keyring.generation)")
        }
        kept.withLock { $0 = Kept(generation: generation, version: version, keyring: keyring) }
        decodes.withLock { $0 += 1 }
        return keyring
    }

    public func replaceKeyring(_ keyring: Keyring, expectedGeneration: UInt64?) async throws {
        let json = try KeyringJSON.encodeChecked(keyring, account: account, expectedGeneration: expectedGeneration)
        guard let generation = Int64(exactly: keyring.generation) else {
            throw StorageError(.corrupt, "keyring generation \(keyring.generation) of account '\(account)' does not fit PostgreSQL's bigint")
        }
        let account = account
        let expected = expectedGeneration.flatMap { Int64(exactly: $0) }
        // Whatever happens, the kept keyring is not trusted past this write: the next read decides.
        kept.withLock { $0 = nil }
        let won = try await store.transaction("replace the keyring of account '\(account)'") { [logger = store.logger] connection in
            let rows: PostgresRowSequence
            if let expected {
                rows = try await connection.query("""
                    UPDATE cmk_keyrings SET generation = \(generation), json = \(json), updated_at = now()
                    WHERE account = \(account) AND generation = \(expected) RETURNING generation
                    """, logger: logger)
            } else {
                rows = try await connection.query("""
                    INSERT INTO cmk_keyrings(account, generation, json) VALUES (\(account), \(generation), \(json))
                    ON CONFLICT (account) DO NOTHING RETURNING generation
                    """, logger: logger)
            }
            var count = 0
            for try await _ in rows { count += 1 }
            CrashPoints.hit("postgres.keyring.before-commit")
            return count == 1
        }
        CrashPoints.hit("postgres.keyring.after-commit")
        guard won else {
            let current: String
            do { current = try await readKeyring().map { String($0.generation) } ?? "none" } catch { current = "unknown" }
            let expected = expectedGeneration.map(String.init) ?? "none"
            throw StorageError(.conflict, "keyring of account '\(account)' is at generation \(current), not \(expected)")
        }
    }
}
