import CMKCore
import Foundation
import Synchronization

/// Streams an object into `object_chunks` under a staged revision, one row per 1 MiB, so
/// memory stays bounded; ``commit(_:)`` publishes it in one transaction.
final class SQLiteObjectWriter: ObjectWriter {
    private struct State {
        var buffer = Data()
        var nextSeq = 0
        var size: Int64 = 0
        var finished = false
    }

    let driver: SQLiteStorageDriver
    let name: ObjectName
    let revision: ObjectRevision
    private let state = Mutex(State())

    init(driver: SQLiteStorageDriver, name: ObjectName, revision: ObjectRevision) {
        self.driver = driver
        self.name = name
        self.revision = revision
    }

    private func finishedError() -> StorageError {
        StorageError(.io, "writer for object '\(name)' of account '\(driver.account)' is already committed or aborted")
    }

    /// Cuts full chunks (or, when `all`, everything) off the buffer and numbers them.
    private func takeChunks(appending bytes: Data, all: Bool) throws -> [(Int, Data)] {
        try state.withLock { state in
            guard !state.finished else { throw finishedError() }
            state.buffer.append(bytes)
            state.size += Int64(bytes.count)
            var chunks: [(Int, Data)] = []
            let size = SQLiteStorageDriver.chunkSize
            while state.buffer.count >= size || (all && !state.buffer.isEmpty) {
                let cut = min(size, state.buffer.count)
                chunks.append((state.nextSeq, Data(state.buffer.prefix(cut))))
                state.buffer = Data(state.buffer.dropFirst(cut))
                state.nextSeq += 1
            }
            if all { state.finished = true }
            return chunks
        }
    }

    func write(_ bytes: Data) async throws {
        for (seq, chunk) in try takeChunks(appending: bytes, all: false) {
            try await driver.stage(revision: revision, seq: seq, bytes: chunk)
        }
    }

    func commit(_ condition: WriteCondition) async throws -> ObjectRevision {
        let size = state.withLock { $0.size }
        do {
            for (seq, chunk) in try takeChunks(appending: Data(), all: true) {
                try await driver.stage(revision: revision, seq: seq, bytes: chunk)
            }
            try await driver.publish(name: name, revision: revision, size: size, condition: condition)
            return revision
        } catch {
            try? await driver.discard(revision: revision)
            throw error
        }
    }

    func abort() async {
        let wasOpen = state.withLock { state in
            defer { state = State(finished: true) }
            return !state.finished
        }
        if wasOpen { try? await driver.discard(revision: revision) }
    }
}
