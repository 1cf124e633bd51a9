import CMKCore
import Foundation
import GRDB

extension SQLiteStorageDriver {
    /// What the database holds, for operators and tests.
    public struct Statistics: Hashable, Sendable {
        /// The database's journal mode (`wal` when healthy).
        public var journalMode: String
        /// The writer connection's `synchronous` setting (2 = FULL).
        public var synchronous: Int
        /// Committed objects.
        public var objects: Int
        /// Writers that started and have not committed or aborted (or were left by a crash).
        public var stagedWrites: Int
        /// Chunk rows, committed and staged.
        public var chunks: Int
    }

    /// Counts rows and reports the journal and sync modes (runs on the writer connection).
    public func statistics() async throws -> Statistics {
        try await Self.database("read statistics of '\(path)'") {
            try await pool.write { db in
                Statistics(
                    journalMode: try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "unknown",
                    synchronous: try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1,
                    objects: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM objects") ?? 0,
                    stagedWrites: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM staging") ?? 0,
                    chunks: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM object_chunks") ?? 0)
            }
        }
    }
}
