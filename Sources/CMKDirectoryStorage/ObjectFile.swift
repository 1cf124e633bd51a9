import CMKCore
import Foundation

/// How objects sit in `objects/`: file names and the revision header.
///
/// **File names.** Object names use only `A-Z a-z 0-9 . _ -` and `/` (``ObjectName``). Each `/`
/// becomes `+`, a byte names never contain, so the mapping is one-to-one, every object is a
/// plain file directly in `objects/` (no subdirectories, no `..` tricks), and a 255-byte name
/// stays within the 255-byte file-name limit (percent- or hex-encoding would not). Names
/// never start with `.`, so `.`-files (temporaries) can never collide with objects.
///
/// **Revision.** Every object file starts with a 24-byte header: the magic `CMKOBJ1\n` and a
/// 128-bit random token written by the writer that created the file; the revision is that
/// token in hex. It changes with every committed write even when the bytes are equal, it is
/// read from the very file descriptor a reader streams from (so reader and revision always
/// agree), and, unlike inode number + size + mtime, it cannot repeat when the file system
/// reuses an inode within one timestamp tick, nor depend on extended-attribute support.
enum ObjectFile {
    static let magic = Data("CMKOBJ1\n".utf8)
    static let headerSize = 24
    /// The largest chunk a reader returns.
    static let chunkSize = 1 << 20
    /// Temporary files start with this prefix.
    static let tempPrefix = ".tmp-"

    static func fileName(_ name: ObjectName) -> String {
        String(name.value.map { $0 == "/" ? "+" : $0 })
    }

    /// The object a file name stands for, or nil for temporaries and foreign files.
    static func objectName(fileName: String) -> ObjectName? {
        guard !fileName.hasPrefix("."), !fileName.contains("/") else { return nil }
        return try? ObjectName(String(fileName.map { $0 == "+" ? "/" : $0 }))
    }

    static func header(token: [UInt8]) -> Data { magic + Data(token) }

    /// Reads the header at the current offset of `fd`; returns the revision.
    static func readRevision(_ fd: Int32, _ path: String) throws -> ObjectRevision {
        let header = try POSIXFile.read(fd, upTo: headerSize, path)
        guard header.count == headerSize, header.prefix(magic.count) == magic else {
            throw StorageError(.corrupt, "object file '\(path)' has no valid header (\(header.count) header bytes); it was not written by this driver")
        }
        return ObjectRevision(Hex.encode(header.suffix(16)))
    }
}
