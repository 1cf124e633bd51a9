import CMKAccounts
import CMKCore
import Foundation
import Synchronization
import Testing

/// The pass's pulse (issue 24, defects 3 and 12): a back-off inside a pass beats while it sleeps
/// and ends as soon as the daemon stops; the DEK throttle then gives up without another call.
/// Time bounds are loose: other suites may keep the cooperative pool busy; a 100 s wait that
/// ends within 30 s has been cut short by the stop.
@Suite("Heartbeat")
struct HeartbeatTests {
    final class Pulse: Sendable {
        let beats = Atomic<Int>(0)
        let stopping = Atomic<Bool>(false)
        var heartbeat: Heartbeat {
            Heartbeat(beat: { self.beats.add(1, ordering: .relaxed) }, stopRequested: { self.stopping.load(ordering: .relaxed) })
        }
    }

    @Test("a sleep inside a pass beats every slice and lasts its duration")
    func sleepBeats() async throws {
        let pulse = Pulse()
        let start = ContinuousClock.now
        try await Heartbeat.$current.withValue(pulse.heartbeat) { try await Heartbeat.sleep(for: .seconds(1)) }
        let took = ContinuousClock.now - start
        #expect(took >= .seconds(1), "\(took)")
        #expect(pulse.beats.load(ordering: .relaxed) >= 2, "beats in 1 s (a slice is 200 ms): \(pulse.beats.load(ordering: .relaxed))")
    }

    @Test("a stop ends a 100 s sleep within a slice, throwing CancellationError")
    func stopEndsSleep() async throws {
        let pulse = Pulse()
        let start = ContinuousClock.now
        let sleeper = Task { try await Heartbeat.$current.withValue(pulse.heartbeat) { try await Heartbeat.sleep(for: .seconds(100)) } }
        try await Task.sleep(for: .milliseconds(500))
        pulse.stopping.store(true, ordering: .relaxed)
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(ContinuousClock.now - start < .seconds(30))
    }

    @Test("the DEK throttle's Retry-After wait ends on a stop with vault.unavailable, and the call is not tried again")
    func throttleAbandonsOnStop() async throws {
        let pulse = Pulse()
        let calls = Atomic<Int>(0)
        let throttle = VaultThrottle()
        let stopper = Task {
            try await Task.sleep(for: .milliseconds(500))
            pulse.stopping.store(true, ordering: .relaxed)
        }
        let start = ContinuousClock.now
        let error = await #expect(throws: VaultError.self) {
            try await Heartbeat.$current.withValue(pulse.heartbeat) {
                try await throttle.perform { () async throws -> Int in
                    calls.add(1, ordering: .relaxed)
                    throw VaultError(.throttled, "429 from the test", retryAfter: .seconds(100))
                }
            }
        }
        _ = try await stopper.value
        #expect(error?.code == .unavailable, "\(String(describing: error))")
        #expect(error?.reason.contains("abandoned because the daemon is stopping") == true, "\(String(describing: error))")
        #expect(calls.load(ordering: .relaxed) == 1, "calls after the stop")
        #expect(ContinuousClock.now - start < .seconds(30))
        #expect(pulse.beats.load(ordering: .relaxed) >= 1, "the wait beat")
    }
}
