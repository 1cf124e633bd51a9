import Glibc

extension SystemFile {
    /// Whether `path` (or, when it does not exist, its directory) is on a file system mounted
    /// read-only (`statvfs` reports `ST_RDONLY`). Storage drivers open such a location for reads
    /// only instead of failing at the first lock file or journal they would create.
    public static func isOnReadOnlyFileSystem(_ path: String) -> Bool {
        var info = statvfs()
        if statvfs(path, &info) != 0 {
            guard errno == ENOENT, statvfs(directory(of: path), &info) == 0 else { return false }
        }
        return info.f_flag & UInt(ST_RDONLY) != 0
    }
}

extension StorageError {
    /// A write refused because the account's storage is on a read-only file system: `what`
    /// names the operation and the file; the sentence says what still works and the fix.
    public static func readOnlyFileSystem(_ what: String, underlying: (any Error)? = nil,
                                          file: String = #fileID, line: Int = #line) -> StorageError {
        StorageError(.io, "\(what): the account's storage is on a read-only file system; reads work, but writes, re-encryption, new keyrings and rebinds fail until it is mounted read-write",
                     underlying: underlying, file: file, line: line)
    }
}
