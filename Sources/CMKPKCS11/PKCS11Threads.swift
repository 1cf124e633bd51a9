import CMKCore
import Foundation

/// The provider's own threads for token calls. PKCS#11 calls block (a network HSM waits on I/O in
/// each), so they never run on Swift's cooperative pool, which has one thread per core: blocked
/// there, they would stall every task of the process. At most `limit` threads (the session pool's
/// size) run calls; a thread is started when a call finds none idle, and they all end when the
/// provider is released. The caller's task is suspended, not blocked, until its call is done.
/// docs/providers/pkcs11.md, "Threads".
final class PKCS11Threads: Sendable {
    /// The queue and the counts, all guarded by `condition`.
    private final class Queue: @unchecked Sendable {
        let condition = NSCondition()
        var jobs: [@Sendable () -> Void] = []
        var threads = 0
        /// Threads waiting for a job and not yet woken for one.
        var idle = 0
        /// Wake-ups handed to idle threads and not yet taken (a spurious wake-up finds none).
        var wakeups = 0
        var peakThreads = 0
        var stopping = false
    }

    private let queue = Queue()
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    deinit {
        queue.condition.lock()
        queue.stopping = true
        queue.condition.broadcast()
        queue.condition.unlock()
    }

    /// The most threads that existed at once (for benchmarks and tests).
    var peakThreads: Int {
        queue.condition.lock()
        defer { queue.condition.unlock() }
        return queue.peakThreads
    }

    /// Runs `body` on one of the threads and suspends the caller until it returns.
    func run<R: Sendable>(_ body: @escaping @Sendable () throws(VaultError) -> R) async throws(VaultError) -> R {
        let result: Result<R, VaultError> = await withCheckedContinuation { continuation in
            submit { continuation.resume(returning: Result { () throws(VaultError) -> R in try body() }) }
        }
        return try result.get()
    }

    private func submit(_ job: @escaping @Sendable () -> Void) {
        let queue = self.queue
        queue.condition.lock()
        queue.jobs.append(job)
        var start = false
        if queue.idle > 0 {
            queue.idle -= 1
            queue.wakeups += 1
            queue.condition.signal()
        } else if queue.threads < limit {
            queue.threads += 1
            queue.peakThreads = max(queue.peakThreads, queue.threads)
            start = true
        }
        queue.condition.unlock()
        guard start else { return }
        let thread = Thread { Self.work(queue) }
        thread.name = "cmk-pkcs11"
        thread.start()
    }

    /// A thread's loop: the next job, else wait for one; end when the provider is released.
    private static func work(_ queue: Queue) {
        queue.condition.lock()
        while true {
            if !queue.jobs.isEmpty {
                let job = queue.jobs.removeFirst()
                queue.condition.unlock()
                job()
                queue.condition.lock()
                continue
            }
            if queue.stopping { break }
            queue.idle += 1
            while queue.wakeups == 0, !queue.stopping { queue.condition.wait() }
            if queue.wakeups > 0 { queue.wakeups -= 1 } else { queue.idle -= 1 }
        }
        queue.threads -= 1
        queue.condition.unlock()
    }
}
