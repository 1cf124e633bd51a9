#if canImport(CMalloc) && os(Linux)
import CMalloc
#endif
import Foundation

/// The daemon's heap policy for glibc malloc.
///
/// A sync pass allocates a little for every account (its result and report) on a few pool
/// threads and frees most of it when the pass ends. With glibc's defaults every thread that
/// contends gets its own arena (up to 8 per core) and freed memory stays in those arenas, so the
/// resident size after a pass over 10,000 accounts sat 10-20 MiB above what was live
/// (docs/performance.md). The daemon therefore:
/// - caps malloc at ``arenaLimit`` arenas and returns free memory at the top of a heap to the
///   kernel once it exceeds ``trimThreshold`` bytes (`mallopt`), when it starts;
/// - hands every free page back to the kernel after each pass (``release()``, `malloc_trim`).
///
/// The operator's own tuning wins: a variable that names the same setting (`MALLOC_ARENA_MAX`,
/// `MALLOC_TRIM_THRESHOLD_`, or `GLIBC_TUNABLES` with a `glibc.malloc.` entry) leaves that
/// setting alone.
public enum ProcessMemory {
    /// The most malloc arenas (glibc's default is 8 per core).
    public static let arenaLimit: Int32 = 2
    /// Free bytes at the top of a heap above which malloc returns them (glibc's default: 128 KiB,
    /// raised on the fly up to 32 MiB as large blocks are freed; a set value stays put).
    public static let trimThreshold: Int32 = 128 * 1024

    /// What ``configure(environment:)`` applied.
    public struct Applied: Hashable, Sendable {
        public var arenaLimit: Bool
        public var trimThreshold: Bool

        public init(arenaLimit: Bool, trimThreshold: Bool) {
            self.arenaLimit = arenaLimit
            self.trimThreshold = trimThreshold
        }
    }

    /// Applies the policy. Call it first in `main`, before threads start allocating.
    @discardableResult
    public static func configure(environment: [String: String] = ProcessInfo.processInfo.environment) -> Applied {
        let tunables = environment["GLIBC_TUNABLES"] ?? ""
        var applied = Applied(arenaLimit: false, trimThreshold: false)
        #if canImport(CMalloc) && os(Linux)
        if environment["MALLOC_ARENA_MAX"] == nil, !tunables.contains("glibc.malloc.arena_max") {
            applied.arenaLimit = mallopt(M_ARENA_MAX, arenaLimit) == 1
        }
        if environment["MALLOC_TRIM_THRESHOLD_"] == nil, !tunables.contains("glibc.malloc.trim_threshold") {
            applied.trimThreshold = mallopt(M_TRIM_THRESHOLD, trimThreshold) == 1
        }
        #endif
        return applied
    }

    /// Makes the process undumpable (`prctl(PR_SET_DUMPABLE, 0)`): the kernel writes no core dump
    /// of it (unless the host set `fs.suid_dumpable=2`, as systemd-coredump does, and then only
    /// for root), and other processes of the same user can neither `ptrace` it nor read its memory
    /// through `/proc/PID/mem`. Root's `gcore` still can: key material is kept out of such dumps by
    /// ``SecretMemory``. Call it first in `main`. True when the process is now undumpable.
    @discardableResult
    public static func forbidCoreDumps() -> Bool {
        #if canImport(CMalloc) && os(Linux)
        return cmk_set_dumpable(0) == 0 && cmk_get_dumpable() == 0
        #else
        return false
        #endif
    }

    /// Returns the free pages of every arena to the kernel (after a pass). True when some were.
    @discardableResult
    public static func release() -> Bool {
        #if canImport(CMalloc) && os(Linux)
        return malloc_trim(0) == 1
        #else
        return false
        #endif
    }
}
