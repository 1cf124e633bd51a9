import CMKCore
import Foundation
import Glibc
import Synchronization

/// Streams one object file from an open descriptor, in chunks of at most 1 MiB. Because the
/// descriptor pins the inode, a concurrent replace (rename over it) or delete does not affect
/// what this reader returns.
final class DirectoryObjectReader: ObjectReader {
    let revision: ObjectRevision
    let path: String
    private let fd: Mutex<Int32?>

    init(fd: Int32, path: String, revision: ObjectRevision) {
        self.fd = Mutex(fd)
        self.path = path
        self.revision = revision
    }

    deinit {
        if let fd = fd.withLock({ $0 }) { Glibc.close(fd) }
    }

    func next() async throws -> Data? {
        try fd.withLock { fd in
            guard let open = fd else { return nil }
            let chunk = try POSIXFile.read(open, upTo: ObjectFile.chunkSize, path)
            if chunk.isEmpty {
                Glibc.close(open)
                fd = nil
                return nil
            }
            return chunk
        }
    }

    func close() async {
        fd.withLock { fd in
            if let open = fd { Glibc.close(open) }
            fd = nil
        }
    }
}
