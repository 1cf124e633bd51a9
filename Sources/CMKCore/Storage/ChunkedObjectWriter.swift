import Foundation
import Synchronization

/// Streams an object into a driver's chunk rows under a staged revision, one row per
/// `chunkSize` bytes, so memory stays bounded; ``commit(_:)`` stages the rest and publishes the
/// revision in the driver's one transaction. Shared by the SQLite and PostgreSQL drivers, which
/// supply the three database steps.
public final class ChunkedObjectWriter: ObjectWriter {
    /// Stores chunk `seq` of the staged revision (and marks the staged write alive).
    public typealias Stage = @Sendable (_ seq: Int, _ bytes: Data) async throws -> Void
    /// Makes the staged revision the object if the condition holds, atomically.
    public typealias Publish = @Sendable (_ size: Int64, _ condition: WriteCondition) async throws -> Void
    /// Forgets the staged revision and its chunks.
    public typealias Discard = @Sendable () async throws -> Void

    private struct State {
        var buffer = Data()
        var nextSeq = 0
        var size: Int64 = 0
        var finished = false
    }

    let account: String
    let name: ObjectName
    let revision: ObjectRevision
    let chunkSize: Int
    let stage: Stage
    let publish: Publish
    let discard: Discard
    private let state = Mutex(State())

    public init(account: String, name: ObjectName, revision: ObjectRevision, chunkSize: Int,
                stage: @escaping Stage, publish: @escaping Publish, discard: @escaping Discard) {
        self.account = account
        self.name = name
        self.revision = revision
        self.chunkSize = chunkSize
        self.stage = stage
        self.publish = publish
        self.discard = discard
    }

    private func finishedError() -> StorageError {
        StorageError(.io, "writer for object '\(name)' of account '\(account)' is already committed or aborted")
    }

    /// Cuts full chunks (or, when `all`, everything) off the buffer and numbers them.
    private func takeChunks(appending bytes: Data, all: Bool) throws -> [(Int, Data)] {
        try state.withLock { state in
            guard !state.finished else { throw finishedError() }
            state.buffer.append(bytes)
            state.size += Int64(bytes.count)
            var chunks: [(Int, Data)] = []
            while state.buffer.count >= chunkSize || (all && !state.buffer.isEmpty) {
                let cut = min(chunkSize, state.buffer.count)
                chunks.append((state.nextSeq, Data(state.buffer.prefix(cut))))
                state.buffer = Data(state.buffer.dropFirst(cut))
                state.nextSeq += 1
            }
            if all { state.finished = true }
            return chunks
        }
    }

    public func write(_ bytes: Data) async throws {
        for (seq, chunk) in try takeChunks(appending: bytes, all: false) {
            try await stage(seq, chunk)
        }
    }

    public func commit(_ condition: WriteCondition) async throws -> ObjectRevision {
        let size = state.withLock { $0.size }
        do {
            for (seq, chunk) in try takeChunks(appending: Data(), all: true) {
                try await stage(seq, chunk)
            }
            try await publish(size, condition)
            return revision
        } catch {
            try? await discard()
            throw error
        }
    }

    public func abort() async {
        let wasOpen = state.withLock { state in
            defer { state = State(finished: true) }
            return !state.finished
        }
        if wasOpen { try? await discard() }
    }
}
