import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What identifies one written state of a file: device, inode, size, and the modification and
/// change times. Any `write(2)` moves the modification time, a rename brings a new inode, and a
/// `chmod` or `utimes` moves the change time (which no caller can set back).
public struct FileIdentity: Hashable, Sendable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var modifiedSeconds: Int
    public var modifiedNanoseconds: Int
    public var changedSeconds: Int
    public var changedNanoseconds: Int

    public init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        #if canImport(Darwin)
        modifiedSeconds = info.st_mtimespec.tv_sec
        modifiedNanoseconds = info.st_mtimespec.tv_nsec
        changedSeconds = info.st_ctimespec.tv_sec
        changedNanoseconds = info.st_ctimespec.tv_nsec
        #else
        modifiedSeconds = info.st_mtim.tv_sec
        modifiedNanoseconds = info.st_mtim.tv_nsec
        changedSeconds = info.st_ctim.tv_sec
        changedNanoseconds = info.st_ctim.tv_nsec
        #endif
    }

    /// The identity of `path` now (of a symbolic link itself unless `followLinks`); nil if it
    /// does not exist.
    public static func of(_ path: String, followLinks: Bool = true) throws(SystemFileError) -> FileIdentity? {
        try SystemFile.status(path, followLinks: followLinks).map(FileIdentity.init)
    }

    /// This identity without the change time, for a file whose owner something resets
    /// (to the same value) while its contents stay.
    public var ignoringChangeTime: FileIdentity {
        var identity = self
        identity.changedSeconds = 0
        identity.changedNanoseconds = 0
        return identity
    }

    /// Whether both times lie at least `margin` seconds before `now` (wall clock).
    ///
    /// The kernel stamps files from a coarse clock (one tick, a few milliseconds), so a second
    /// write within the tick of the first can leave size, modification and change time as they
    /// were. A file whose times are older than the margin cannot be in such a tick any more: any
    /// later write stamps a later time. (git's "racily clean" rule, for the same reason.)
    public func isSettled(at now: timespec, margin seconds: Int) -> Bool {
        func before(_ s: Int, _ ns: Int) -> Bool { (s, ns) < (now.tv_sec - seconds, now.tv_nsec) }
        return before(modifiedSeconds, modifiedNanoseconds) && before(changedSeconds, changedNanoseconds)
    }
}

/// One value derived from files, kept while the files stay as they were: the drivers keep each
/// account's decoded keyring here, so a pass with nothing to do costs a `stat` per file instead
/// of opening a database or reading and decoding JSON.
///
/// A value is stored only when the files did not change while it was read (identities taken
/// before and after are equal) and every file has settled (``FileIdentity/isSettled(at:margin:)``),
/// so no write can hide in the timestamp tick the stored identity came from. A file that does not
/// exist is part of the fingerprint as `nil`.
public final class FileDerivedCache<Value: Sendable>: Sendable {
    /// How long a file's times must lie in the past before a value read from it is kept.
    public static var settleMargin: Int { 2 }

    private struct Entry {
        let fingerprint: [FileIdentity?]
        let value: Value
    }

    private let entry = Mutex<Entry?>(nil)

    public init() {}

    /// The kept value if the files still have `fingerprint`.
    public func value(for fingerprint: [FileIdentity?]) -> Value? {
        entry.withLock { entry in
            guard let entry, entry.fingerprint == fingerprint else { return nil }
            return entry.value
        }
    }

    /// Keeps `value`, read between `before` and `after` (fingerprints taken with a clock reading
    /// `now` taken before `before`), if nothing moved and every file has settled; otherwise forgets.
    public func store(_ value: Value, readBetween before: [FileIdentity?], and after: [FileIdentity?], now: timespec) {
        let keep = before == after && before.allSatisfy { $0?.isSettled(at: now, margin: Self.settleMargin) ?? true }
        entry.withLock { $0 = keep ? Entry(fingerprint: before, value: value) : nil }
    }

    /// The kept value while the files still have the fingerprint `fingerprint()` returns;
    /// otherwise `read()`, kept if the files stayed as they were and have settled.
    public func value(fingerprint: () throws -> [FileIdentity?], read: () async throws -> Value) async throws -> Value {
        let now = Self.now()
        let before = try fingerprint()
        if let kept = value(for: before) { return kept }
        let fresh = try await read()
        store(fresh, readBetween: before, and: try fingerprint(), now: now)
        return fresh
    }

    /// Forgets the value (after this process changed the files).
    public func invalidate() {
        entry.withLock { $0 = nil }
    }

    /// The wall clock, as the kernel stamps files.
    public static func now() -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return now
    }
}
