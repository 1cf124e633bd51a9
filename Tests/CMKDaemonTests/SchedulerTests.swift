import CMKDaemon
import Foundation
import Testing

@Suite("Scheduler")
struct SchedulerTests {
    @Test("triggers during a pass coalesce into one follow-up pass with every reason")
    func coalescing() async throws {
        let scheduler = Scheduler()
        scheduler.start(handleSignals: false)
        var iterator = scheduler.triggers.makeAsyncIterator()
        _ = await iterator.next()
        #expect(scheduler.takePending() == [.startup])
        // A pass is running: several triggers arrive.
        scheduler.trigger(.signal)
        scheduler.trigger(.timer)
        scheduler.trigger(.reload)
        scheduler.trigger(.signal)
        _ = await iterator.next()
        #expect(scheduler.takePending() == [.signal, .timer, .reload])
        scheduler.finish()
        #expect(await iterator.next() == nil, "exactly one follow-up wake-up, then the stream ends")
    }

    @Test("the timer fires after the scheduled delay")
    func timer() async throws {
        let scheduler = Scheduler()
        var iterator = scheduler.triggers.makeAsyncIterator()
        let next = scheduler.schedule(after: .milliseconds(200))
        #expect(next.timeIntervalSinceNow > 0.1)
        _ = await iterator.next()
        #expect(scheduler.takePending() == [.timer])
        scheduler.finish()
    }

    @Test("jitter stays within the configured maximum")
    func jitter() {
        #expect(Scheduler.delay(interval: .seconds(900), maxJitter: .seconds(90), unit: 0) == .seconds(900))
        #expect(Scheduler.delay(interval: .seconds(900), maxJitter: .seconds(90), unit: 0.5) == .seconds(945))
    }

    @Test("heartbeat: healthy while idle or progressing, unhealthy when a pass stalls")
    func heartbeat() async throws {
        let scheduler = Scheduler()
        #expect(scheduler.isHealthy(maxAge: .milliseconds(100)))
        scheduler.setBusy(true)
        #expect(scheduler.isHealthy(maxAge: .milliseconds(100)))
        try await Task.sleep(for: .milliseconds(150))
        #expect(!scheduler.isHealthy(maxAge: .milliseconds(100)))
        scheduler.beat()
        #expect(scheduler.isHealthy(maxAge: .milliseconds(100)))
        scheduler.setBusy(false)
        try await Task.sleep(for: .milliseconds(150))
        #expect(scheduler.isHealthy(maxAge: .milliseconds(100)))
    }
}
