import CMKCore
import Foundation
import Synchronization

/// Streams one object revision chunk row by chunk row. A replaced or deleted revision's chunks
/// stay in `cmk_object_chunks` for the store's reader grace (default 15 minutes, `cmk_retired`),
/// so a reader finishes the revision it opened; a chunk missing before the revision's end is
/// reported, never read as a short object.
final class PostgresObjectReader: ObjectReader {
    let driver: PostgresStorageDriver
    let name: ObjectName
    let revision: ObjectRevision
    /// The number of chunk rows the revision has.
    let chunkCount: Int
    private let nextSeq = Mutex<Int?>(0)

    init(driver: PostgresStorageDriver, name: ObjectName, revision: ObjectRevision, size: Int64) {
        self.driver = driver
        self.name = name
        self.revision = revision
        chunkCount = Int((size + Int64(PostgresStorageDriver.chunkSize) - 1) / Int64(PostgresStorageDriver.chunkSize))
    }

    func next() async throws -> Data? {
        guard let seq = nextSeq.withLock({ $0 }), seq < chunkCount else {
            nextSeq.withLock { $0 = nil }
            return nil
        }
        guard let chunk = try await driver.chunk(revision: revision, seq: seq) else {
            throw StorageError(.conflict, "object '\(name)' of account '\(driver.account)' was replaced and its revision \(revision) removed while it was being read; read it again")
        }
        nextSeq.withLock { $0 = seq + 1 }
        return chunk
    }

    func close() async {
        nextSeq.withLock { $0 = nil }
    }
}
