import CMKCore
import Foundation
import Glibc
import Testing

@Suite("File-derived cache")
struct FileDerivedCacheTests {
    let path = NSTemporaryDirectory() + "filecache-\(UUID().uuidString)"

    private func identity() throws -> FileIdentity? { try FileIdentity.of(path) }

    private func later(_ seconds: Int) -> timespec {
        var now = FileDerivedCache<Int>.now()
        now.tv_sec += seconds
        return now
    }

    @Test("keeps a value read from settled, unchanged files, and forgets it when a file changes")
    func keepsWhileUnchanged() throws {
        try Data("one".utf8).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let cache = FileDerivedCache<Int>()
        let fingerprint = [try identity(), nil]
        cache.store(1, readBetween: fingerprint, and: fingerprint, now: later(3))
        #expect(cache.value(for: fingerprint) == 1)
        // Same length, same second: a write still moves the nanoseconds or the inode.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.write(contentsOf: Data("two".utf8))
        try handle.close()
        let changed = [try identity(), nil]
        #expect(changed != fingerprint)
        #expect(cache.value(for: changed) == nil)
        #expect(cache.value(for: [try identity(), try identity()]) == nil, "a file that appeared changes the fingerprint")
        cache.invalidate()
        #expect(cache.value(for: fingerprint) == nil)
    }

    @Test("does not keep a value read from files written within the settle margin")
    func racyFilesAreNotKept() throws {
        try Data("fresh".utf8).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let cache = FileDerivedCache<Int>()
        let fingerprint = [try identity()]
        cache.store(1, readBetween: fingerprint, and: fingerprint, now: FileDerivedCache<Int>.now())
        #expect(cache.value(for: fingerprint) == nil, "a file written just now could change again within its timestamp tick")
        cache.store(2, readBetween: fingerprint, and: fingerprint, now: later(FileDerivedCache<Int>.settleMargin + 1))
        #expect(cache.value(for: fingerprint) == 2)
    }

    @Test("does not keep a value when the files moved while it was read, and drops the old one")
    func movedDuringRead() throws {
        try Data("a".utf8).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let cache = FileDerivedCache<Int>()
        let before = [try identity()]
        cache.store(1, readBetween: before, and: before, now: later(3))
        try Data("bb".utf8).write(to: URL(fileURLWithPath: path))
        let after = [try identity()]
        cache.store(2, readBetween: before, and: after, now: later(3))
        #expect(cache.value(for: before) == nil)
        #expect(cache.value(for: after) == nil)
    }
}
