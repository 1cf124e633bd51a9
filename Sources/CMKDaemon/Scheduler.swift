import CMKCore
import Dispatch
import Foundation
import Synchronization

/// When passes run (SPEC §7): a first pass at start, then a one-shot `DispatchSourceTimer` re-armed
/// after every pass with the interval plus jitter; SIGUSR1 runs a pass now; SIGHUP reloads and
/// then runs a pass. Triggers that arrive during a pass coalesce into one follow-up pass, and
/// passes never overlap because one loop consumes ``triggers``.
///
/// It also keeps the loop's heartbeat for the watchdog: fresh while the loop waits, and while a
/// running pass keeps reporting progress: an account done, and through the pass's ``Heartbeat``
/// every vault exchange (bounded by `vault.azure.timeout`) and every slice of a back-off. So the
/// heartbeat measures the loop, not the vault: a slow vault keeps it fresh, a hung loop does not.
public final class Scheduler: Sendable {
    /// Why a pass was asked for.
    public enum Reason: String, Sendable, Hashable, CaseIterable {
        case startup, timer, signal, reload
        /// A key event pushed to the receiver (EventReceiver): like `signal`, a pass now.
        case event
        /// The key-state probe (KeyProbe) saw a change a pass acts on: like `signal`, a pass now.
        case probe
    }

    private struct State: Sendable {
        var pending: Set<Reason> = []
        var nextPass: Date?
        var busySince: ContinuousClock.Instant?
        var lastProgress = ContinuousClock.now
        var finished = false
    }

    /// Dispatch sources, touched only on `queue` (created, armed and cancelled there), which is
    /// what makes this box safe to share: no access happens off the queue.
    private final class Sources: @unchecked Sendable {
        var timer: (any DispatchSourceTimer)?
        var signals: [any DispatchSourceSignal] = []
    }

    private let queue = DispatchQueue(label: "cmk-syncer.scheduler")
    private let sources = Sources()
    private let state = Mutex(State())
    private let continuation: AsyncStream<Void>.Continuation
    /// One element per wake-up; read ``takePending()`` to learn why.
    public let triggers: AsyncStream<Void>

    public init() {
        (triggers, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Installs SIGUSR1 (pass now) and SIGHUP (reload, then pass) handlers and asks for the first pass.
    public func start(handleSignals: Bool = true) {
        if handleSignals {
            queue.sync {
                for (number, reason) in [(SIGUSR1, Reason.signal), (SIGHUP, Reason.reload)] {
                    signal(number, SIG_IGN)
                    let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                    source.setEventHandler { [weak self] in self?.trigger(reason) }
                    source.resume()
                    sources.signals.append(source)
                }
            }
        }
        trigger(.startup)
    }

    /// Asks for a pass as soon as the loop is free.
    public func trigger(_ reason: Reason) {
        let open = state.withLock { state -> Bool in
            guard !state.finished else { return false }
            state.pending.insert(reason)
            return true
        }
        if open { continuation.yield() }
    }

    /// The reasons collected since the last call.
    public func takePending() -> Set<Reason> {
        state.withLock { state in
            defer { state.pending = [] }
            return state.pending
        }
    }

    /// Arms the timer for the next pass `delay` from now; returns when that is.
    @discardableResult
    public func schedule(after delay: Duration) -> Date {
        let next = Date().addingTimeInterval(delay.timeInterval)
        state.withLock { $0.nextPass = next }
        let nanos = delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
        queue.async { [self] in
            sources.timer?.cancel()
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + .nanoseconds(Int(nanos)), leeway: .milliseconds(100))
            timer.setEventHandler { [weak self] in self?.trigger(.timer) }
            timer.resume()
            sources.timer = timer
        }
        return next
    }

    /// Whether a pass runs, or one was asked for and has not started yet: the probe skips its turn.
    public var isBusyOrPending: Bool { state.withLock { $0.busySince != nil || !$0.pending.isEmpty } }

    /// When the timer fires next.
    public var nextPass: Date? { state.withLock { $0.nextPass } }

    /// Stops the timer, the signal handlers and the trigger stream.
    public func finish() {
        state.withLock { $0.finished = true }
        continuation.finish()
        queue.sync {
            sources.timer?.cancel()
            sources.timer = nil
            for source in sources.signals { source.cancel() }
            sources.signals = []
        }
    }

    // MARK: Heartbeat

    /// Marks the loop busy (a pass started) or idle (waiting for a trigger).
    public func setBusy(_ busy: Bool) {
        state.withLock {
            $0.busySince = busy ? ContinuousClock.now : nil
            $0.lastProgress = ContinuousClock.now
        }
    }

    /// A running pass made progress.
    public func beat() {
        state.withLock { $0.lastProgress = ContinuousClock.now }
    }

    /// Whether the loop is alive: idle, or busy with progress within `maxAge`.
    public func isHealthy(maxAge: Duration) -> Bool {
        state.withLock { state in
            guard state.busySince != nil else { return !state.finished }
            return ContinuousClock.now - state.lastProgress < maxAge
        }
    }

    /// The delay before the next regular pass: `interval` plus a random jitter in [0, maxJitter].
    public static func delay(interval: Duration, maxJitter: Duration, unit: Double = Double.random(in: 0..<1)) -> Duration {
        interval + maxJitter * unit
    }
}
