import CMKCore
import Foundation
import Glibc
import Synchronization

/// Spills an object to `objects/.tmp-<token>` (so memory stays bounded) and publishes it with
/// ``DirectoryStorageDriver/publish(temp:name:condition:)``.
///
/// The writer holds a `flock` on its temporary file while it lives, which tells
/// ``DirectoryStorageDriver`` instances opening concurrently that the file is not stale.
final class DirectoryObjectWriter: ObjectWriter {
    private enum State {
        case open(fd: Int32)
        case busy
        case finished
    }

    let driver: DirectoryStorageDriver
    let name: ObjectName
    let temp: String
    let revision: ObjectRevision
    private let state: Mutex<State>

    init(driver: DirectoryStorageDriver, name: ObjectName) throws {
        let token = POSIXFile.randomToken()
        self.driver = driver
        self.name = name
        self.temp = driver.objectsDirectory + "/" + ObjectFile.tempPrefix + Hex.encode(token)
        self.revision = ObjectRevision(Hex.encode(token))
        guard let fd = try POSIXFile.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600) else {
            throw StorageError(.io, "cannot create '\(temp)'")
        }
        do {
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { throw POSIXFile.error("flock", temp) }
            guard fchmod(fd, 0o600) == 0 else { throw POSIXFile.error("fchmod", temp) }
            try POSIXFile.writeAll(fd, ObjectFile.header(token: token), temp)
        } catch {
            close(fd)
            _ = try? POSIXFile.unlink(temp)
            throw error
        }
        self.state = Mutex(.open(fd: fd))
    }

    deinit {
        // A writer dropped without commit or abort must not leak its descriptor or temp file.
        if case .open(let fd) = state.withLock({ $0 }) {
            close(fd)
            _ = try? POSIXFile.unlink(temp)
        }
    }

    private func finishedError() -> StorageError {
        StorageError(.io, "writer for object '\(name)' of account '\(driver.account)' is already committed, aborted or busy")
    }

    func write(_ bytes: Data) async throws {
        try state.withLock { state in
            guard case .open(let fd) = state else { throw finishedError() }
            do {
                try POSIXFile.writeAll(fd, bytes, temp)
            } catch {
                close(fd)
                _ = try? POSIXFile.unlink(temp)
                state = .finished
                throw error
            }
        }
    }

    func commit(_ condition: WriteCondition) async throws -> ObjectRevision {
        let fd = try state.withLock { state in
            guard case .open(let fd) = state else { throw finishedError() }
            state = .busy
            return fd
        }
        defer {
            close(fd)
            state.withLock { $0 = .finished }
        }
        do {
            try POSIXFile.fsync(fd, temp)
            CrashPoints.hit("directory.object.temp-synced")
            try await driver.publish(temp: temp, name: name, condition: condition)
            return revision
        } catch {
            _ = try? POSIXFile.unlink(temp)
            throw error
        }
    }

    func abort() async {
        state.withLock { state in
            if case .open(let fd) = state {
                close(fd)
                _ = try? POSIXFile.unlink(temp)
            }
            if case .busy = state { return }
            state = .finished
        }
    }
}
