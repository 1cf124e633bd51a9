#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// This process's open-file limit (`RLIMIT_NOFILE`) and whether it has run out of descriptors.
///
/// systemd starts services with a soft limit of 1024 and a hard limit of 524288 (the kernel's
/// `fs.nr_open` at most); a process may raise its own soft limit up to the hard one. The daemon
/// does so at start (docs/systemd.md) and then sizes its set of open SQLite databases to fit.
public enum DescriptorLimit {
    /// The soft and hard limits.
    public struct Limits: Hashable, Sendable {
        /// What `open(2)` is held to now.
        public var soft: Int
        /// How far an unprivileged process may raise ``soft``.
        public var hard: Int
    }

    /// The largest soft limit this process asks for, when the hard limit is "unlimited".
    public static let ceiling = 1 << 20

    /// The current limits (unlimited counts as ``ceiling``).
    public static func current() -> Limits {
        var limit = rlimit()
        guard getrlimit(resourceNOFILE, &limit) == 0 else { return Limits(soft: 1024, hard: 1024) }
        return Limits(soft: clamp(limit.rlim_cur), hard: clamp(limit.rlim_max))
    }

    /// Raises the soft limit to the hard one (at most ``ceiling``); returns the limits before and
    /// after. When the kernel refuses (`nr_open` below the hard limit) the soft limit stays.
    @discardableResult
    public static func raiseSoftLimit() -> (before: Limits, after: Limits) {
        let before = current()
        let target = min(before.hard, ceiling)
        guard target > before.soft else { return (before, before) }
        var limit = rlimit()
        guard getrlimit(resourceNOFILE, &limit) == 0 else { return (before, before) }
        limit.rlim_cur = rlim_t(target)
        _ = setrlimit(resourceNOFILE, &limit)
        return (before, current())
    }

    /// True when `count` more descriptors cannot be opened now (EMFILE or ENFILE): duplicates
    /// standard error that many times and closes the copies again. Never fails otherwise.
    public static func isExhausted(needing count: Int = 4) -> Bool {
        var copies: [Int32] = []
        defer { for fd in copies { close(fd) } }
        for _ in 0..<max(1, count) {
            let fd = fcntl(2, F_DUPFD_CLOEXEC, 0)
            if fd < 0 { return DescriptorExhaustion.isExhaustion(errno) }
            copies.append(fd)
        }
        return false
    }

    private static func clamp(_ value: rlim_t) -> Int {
        value > rlim_t(ceiling) ? ceiling : Int(value)
    }

    #if canImport(Glibc)
    private static let resourceNOFILE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resourceNOFILE = RLIMIT_NOFILE
    #endif
}
