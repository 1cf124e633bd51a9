import CMKCore
import Foundation
import Glibc

extension DirectoryStorageDriver {
    func objectPath(_ name: ObjectName) -> String { objectsDirectory + "/" + ObjectFile.fileName(name) }

    public func makeObjectWriter(_ name: ObjectName) async throws -> any ObjectWriter {
        try DirectoryObjectWriter(driver: self, name: name)
    }

    public func openObject(_ name: ObjectName) async throws -> any ObjectReader {
        let path = objectPath(name)
        guard let fd = try POSIXFile.open(path, O_RDONLY | O_NOFOLLOW, missingOK: true) else {
            throw StorageError(.notFound, "object '\(name)' of account '\(account)' does not exist")
        }
        do {
            // Objects are ciphertext, but a file others could write lets them replace or destroy data.
            try POSIXFile.require(.privateFile, try POSIXFile.status(of: fd, path), path, what: "object file")
            return DirectoryObjectReader(fd: fd, path: path, revision: try ObjectFile.readRevision(fd, path))
        } catch {
            close(fd)
            throw error
        }
    }

    public func listObjects() async throws -> [ObjectName] {
        try contents(objectsDirectory).compactMap(ObjectFile.objectName(fileName:)).sorted()
    }

    public func deleteObject(_ name: ObjectName, ifRevision revision: ObjectRevision?) async throws {
        let path = objectPath(name)
        try await lock.withLock {
            guard let current = try currentRevision(path) else {
                throw StorageError(.notFound, "object '\(name)' of account '\(account)' does not exist")
            }
            if let revision, revision != current {
                throw StorageError(.conflict, "object '\(name)' of account '\(account)' is at revision \(current), not \(revision)")
            }
            try POSIXFile.unlink(path)
            try POSIXFile.fsyncDirectory(objectsDirectory)
        }
    }

    /// The revision of the committed file at `path`, or nil if there is none.
    func currentRevision(_ path: String) throws -> ObjectRevision? {
        guard let fd = try POSIXFile.open(path, O_RDONLY | O_NOFOLLOW, missingOK: true) else { return nil }
        defer { close(fd) }
        return try ObjectFile.readRevision(fd, path)
    }

    /// Under the lock: checks `condition` against the committed file and renames `temp` over it.
    func publish(temp: String, name: ObjectName, condition: WriteCondition) async throws {
        let path = objectPath(name)
        try await lock.withLock {
            let current = try currentRevision(path)
            try condition.check(current: current, object: name, account: account)
            try POSIXFile.rename(temp, path)
            CrashPoints.hit("directory.object.renamed")
            try POSIXFile.fsyncDirectory(objectsDirectory)
        }
    }
}
