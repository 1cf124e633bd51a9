import CMKCore
import GRDB

extension SQLiteStorageDriver {
    /// The open database for a write. On a read-only file system the database is opened read-only
    /// (``openPool(_:busyTimeout:)``) and every write fails here, naming the database and saying
    /// that reads still work; a database opened read-only before the file system was remounted
    /// read-write is opened again for writing.
    func writablePool() throws -> DatabasePool {
        if SystemFile.isOnReadOnlyFileSystem(path) {
            throw StorageError.readOnlyFileSystem("cannot write to database '\(path)' of account '\(account)'")
        }
        // The read-only pool must be gone before the database opens again: SQLite shares one
        // shared-memory mapping per file in a process, and the read-only one would stay.
        guard try pool.configuration.readonly else { return try pool }
        handles.close(handleKey)
        return try pool
    }
}
