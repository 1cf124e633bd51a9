@testable import CMKConfiguration
import Testing

/// `cache.read-wait`: the readers' bound on waiting for a throttling vault (issue 14, defect 13).
@Suite("cache.read-wait")
struct ReadWaitTests {
    @Test("defaults to 10s, accepts 0s to 10m")
    func values() throws {
        #expect(try Fixture.parse(Fixture.yaml()).cache.readWait == .seconds(10))
        #expect(try Fixture.parse(Fixture.yaml("cache:\n  read-wait: 0s\n")).cache.readWait == .zero)
        #expect(try Fixture.parse(Fixture.yaml("cache:\n  read-wait: 90s\n")).cache.readWait == .seconds(90))
        #expect(try Fixture.parse(Fixture.yaml("cache:\n  read-wait: 10m\n")).cache.readWait == .seconds(600))
    }

    @Test("out of range or not a duration, named with what is accepted")
    func refused() {
        Fixture.expectFailure(Fixture.yaml("cache:\n  read-wait: 11m\n"), at: "cache.read-wait", "'11m' is out of range (accepted: 0s to 10m)", code: .invalidValue)
        Fixture.expectFailure(Fixture.yaml("cache:\n  read-wait: '10'\n"), at: "cache.read-wait",
                              "'10' is not a duration (\(SyncTests.durationHint))", code: .invalidValue)
    }
}
