import CMKCore
import Foundation
import GRDB
import Synchronization

/// Streams one object revision, chunk row by chunk row, from a ``DatabaseSnapshot``: its own
/// connection holding a read transaction, so later commits (which delete the old revision's
/// chunks) stay invisible to it until ``close()``.
final class SQLiteObjectReader: ObjectReader {
    private struct State {
        var snapshot: DatabaseSnapshot?
        var nextSeq = 0
    }

    let revision: ObjectRevision
    let path: String
    private let state: Mutex<State>

    init(snapshot: DatabaseSnapshot, path: String, revision: ObjectRevision) {
        self.revision = revision
        self.path = path
        self.state = Mutex(State(snapshot: snapshot))
    }

    func next() async throws -> Data? {
        let (snapshot, seq) = state.withLock { ($0.snapshot, $0.nextSeq) }
        guard let snapshot else { return nil }
        let revision = revision
        let chunk = try await SQLiteStorageDriver.database("read object revision \(revision) from '\(path)'") {
            try await snapshot.read { db in
                try Data.fetchOne(db, sql: "SELECT bytes FROM object_chunks WHERE revision = ? AND seq = ?", arguments: [revision.value, seq])
            }
        }
        state.withLock { state in
            if chunk == nil { state.snapshot = nil } else { state.nextSeq = seq + 1 }
        }
        // A row holding an empty blob reads back as empty Data, never nil; nil means the end.
        return chunk
    }

    func close() async {
        state.withLock { $0.snapshot = nil }
    }
}
