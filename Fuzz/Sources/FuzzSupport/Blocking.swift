import Dispatch

/// Runs `body` to completion on the concurrency pool and waits for it: libFuzzer calls the
/// harness synchronously, the parsers behind a request or a vault answer are async.
public func blocking(_ body: @escaping @Sendable () async -> Void) {
    let done = DispatchSemaphore(value: 0)
    Task { await body(); done.signal() }
    done.wait()
}
