import CMKSystemd
import Foundation

/// The address-space check made before anything starts a thread.
///
/// Under a small `RLIMIT_AS` (`prlimit --as=128M`, `ulimit -v`, `LimitAS=`) libdispatch cannot
/// create the threads of the Swift runtime: it sleeps and retries forever, before `main` runs
/// a line, so the daemon hung silently and ignored SIGTERM. Most of the address space a process
/// takes is reserved, not used: thread stacks (8 MiB each; the runtime's, the HTTP client's and
/// dispatch's threads grow with the CPUs) and malloc arenas. So the executable refuses at once,
/// exit 1, with a message naming the limit and the minimum, when the limit is below
/// ``minimum(processors:)`` (the daemon with the local vault peaks at about 250 MiB of address
/// space on 2 CPUs).
public enum AddressSpace {
    /// 256 MiB plus 32 MiB per online CPU (docs/systemd.md, Resource limits).
    public static func minimum(processors: Int) -> UInt64 {
        UInt64(256 + 32 * max(1, processors)) << 20
    }

    /// Why the process cannot run with `limit` (the soft `RLIMIT_AS`, nil for unlimited), or nil.
    public static func refusal(limit: UInt64?, processors: Int) -> String? {
        let needed = minimum(processors: processors)
        guard let limit, limit < needed else { return nil }
        return "the address-space limit (RLIMIT_AS: ulimit -v, prlimit --as, LimitAS=) is \(limit >> 20) MiB; cmk-syncer needs at least \(needed >> 20) MiB on this host (256 MiB + 32 MiB per CPU, \(processors) CPUs) for its threads' stacks and memory arenas: raise the limit or remove it (LimitAS=infinity)"
    }

    /// Checks this process's limit; on a refusal writes the message to stderr, tells systemd
    /// (`ERRNO=ENOMEM`) and exits 1. Call first thing in `main`, before any `async` code.
    public static func checkAtStart() {
        var limit = rlimit()
        let soft: UInt64? = getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0 && limit.rlim_cur != rlim_t.max ? UInt64(limit.rlim_cur) : nil
        let processors = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        guard let refusal = refusal(limit: soft, processors: processors) else { return }
        StandardError.ignoreWriteSignals()
        StandardError.write("cmk-syncer: cannot start: \(refusal)\n")
        SystemdNotifier().errno(ENOMEM, status: "failed to start: \(refusal)")
        exit(CMKExitCode.failure)
    }
}
