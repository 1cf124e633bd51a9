@testable import CMKConfiguration
import Testing

@Suite("sync, cache, logging")
struct SyncTests {
    static let durationHint = "use one whole number and one unit of ms, s, m, h, d; examples: 500ms, 90s, 15m, 14d"

    @Test(arguments: [
        ("500ms", Duration.milliseconds(500)), ("90s", .seconds(90)), ("15m", .seconds(900)),
        ("2h", .seconds(7200)), ("14d", .seconds(14 * 86_400)), ("0s", .zero),
    ])
    func durationSyntax(text: String, value: Duration) {
        #expect(DurationSyntax.parse(text) == value)
    }

    @Test(arguments: [(Duration.seconds(900), "15m"), (.seconds(86_400), "1d"), (.seconds(90), "90s"), (.milliseconds(1500), "1500ms"), (.zero, "0ms")])
    func durationFormatting(value: Duration, text: String) {
        #expect(DurationSyntax.format(value) == text)
    }

    @Test(arguments: ["900", "15 m", "15M", "1h30m", "1.5h", "-5m", "+5m", "m", "15min", "10us", "9999999999999d"])
    func badDurationsNameTheKeyAndShowExamples(text: String) {
        Fixture.expectFailure(Fixture.yaml("sync:\n  interval: '\(text)'\n"), at: "sync.interval",
                              "'\(text)' is not a duration (\(Self.durationHint))", code: .invalidValue)
    }

    @Test func missingDurationValue() {
        Fixture.expectFailure(Fixture.yaml("sync:\n  interval:\n"), at: "sync.interval",
                              "expected a duration (\(Self.durationHint)), got no value", code: .wrongType)
    }

    @Test(arguments: [
        ("sync:\n  interval: 59s\n", "sync.interval", "'59s' is out of range (accepted: 1m to 24h)"),
        ("sync:\n  interval: 25h\n", "sync.interval", "'25h' is out of range (accepted: 1m to 24h)"),
        ("sync:\n  pulled-poll-interval: 9s\n", "sync.pulled-poll-interval", "'9s' is out of range (accepted: 10s to the interval, 15m)"),
        ("sync:\n  interval: 5m\n  pulled-poll-interval: 6m\n", "sync.pulled-poll-interval", "'6m' is out of range (accepted: 10s to the interval, 5m)"),
        ("sync:\n  probe-interval: 9s\n", "sync.probe-interval", "'9s' is out of range (accepted: 10s to the interval, 15m, or off)"),
        ("sync:\n  interval: 5m\n  probe-interval: 6m\n", "sync.probe-interval", "'6m' is out of range (accepted: 10s to the interval, 5m, or off)"),
        ("sync:\n  probe-interval: never\n", "sync.probe-interval", "'never' is not a duration (\(Self.durationHint))"),
        ("sync:\n  jitter: 51%\n", "sync.jitter", "'51%' is out of range (accepted: 0% to 50% of the interval, or a duration shorter than the interval, 15m)"),
        ("sync:\n  jitter: 15m\n", "sync.jitter", "'15m' is not shorter than the interval (accepted: 0% to 50% of the interval, or a duration shorter than the interval, 15m)"),
        ("sync:\n  jitter: lots\n", "sync.jitter", "'lots' is neither a percentage nor a duration (accepted: 0% to 50% of the interval, or a duration shorter than the interval, 15m; examples: 10%, 2.5%, 30s)"),
        ("sync:\n  jitter: '-5%'\n", "sync.jitter", "'-5%' is not a percentage (accepted: 0% to 50% of the interval, or a duration shorter than the interval, 15m; examples: 10%, 2.5%, 30s)"),
        ("sync:\n  jitter: 0.1\n", "sync.jitter", "'0.1' is neither a percentage nor a duration (accepted: 0% to 50% of the interval, or a duration shorter than the interval, 15m; examples: 10%, 2.5%, 30s)"),
        ("sync:\n  suspend: later\n", "sync.suspend", "'later' is not a suspend policy (accepted: immediate, after-cache-ttl)"),
        ("sync:\n  concurrency: 0\n", "sync.concurrency", "0 is out of range (accepted: 1 to 64)"),
        ("sync:\n  concurrency: 65\n", "sync.concurrency", "65 is out of range (accepted: 1 to 64)"),
        ("sync:\n  concurrency: four\n", "sync.concurrency", "expected a whole number (accepted: 1 to 64), got 'four'"),
        ("sync:\n  concurrency: 4.0\n", "sync.concurrency", "expected a whole number (accepted: 1 to 64), got '4.0'"),
        ("sync:\n  backup-retention: 3651d\n", "sync.backup-retention", "'3651d' is out of range (accepted: 0s to 3650d)"),
        ("sync:\n  start-timeout: 0s\n", "sync.start-timeout", "'0s' is out of range (accepted: 1s to 1h)"),
        ("sync:\n  retry:\n    attempts: 11\n", "sync.retry.attempts", "11 is out of range (accepted: 1 to 10)"),
        ("sync:\n  retry:\n    initial-delay: 5ms\n", "sync.retry.initial-delay", "'5ms' is out of range (accepted: 10ms to 1h)"),
        ("sync:\n  retry:\n    initial-delay: 2s\n    max-delay: 1s\n", "sync.retry.max-delay", "'1s' is out of range (accepted: the initial delay, 2s, to 1h)"),
        ("sync: [interval]\n", "sync", "expected a mapping with the keys interval, jitter, pulled-poll-interval, probe-interval, suspend, concurrency, backup-retention, expiry-warning, start-timeout, retry, instance-name, got a list"),
        ("cache:\n  ttl: 61m\n", "cache.ttl", "'61m' is out of range (accepted: 1s to 1h)"),
        ("cache:\n  ttl: 500ms\n", "cache.ttl", "'500ms' is out of range (accepted: 1s to 1h)"),
        ("cache:\n  capacity: 1000001\n", "cache.capacity", "1000001 is out of range (accepted: 1 to 1000000)"),
        ("logging:\n  level: debg\n", "logging.level", "'debg' is not a log level, did you mean 'debug'? (accepted: trace, debug, info, notice, warning, error, critical)"),
        ("logging:\n  level: verbose\n", "logging.level", "'verbose' is not a log level (accepted: trace, debug, info, notice, warning, error, critical)"),
        ("logging:\n  format: syslog\n", "logging.format", "'syslog' is not a log format (accepted: auto, journal, text, json)"),
    ])
    func badValues(extra: String, keyPath: String, reason: String) {
        Fixture.expectFailure(Fixture.yaml(extra), at: keyPath, reason)
    }

    @Test func everySettingIsRead() throws {
        let configuration = try Fixture.parse(Fixture.yaml("""
            sync:
              interval: 1h
              jitter: 2.5%
              pulled-poll-interval: 30s
              suspend: after-cache-ttl
              concurrency: 64
              backup-retention: 0s
              start-timeout: 2m
              retry:
                attempts: 10
                initial-delay: 250ms
                max-delay: 1m
            cache:
              ttl: 5m
              capacity: 1
            logging:
              level: debug
              format: json

            """))
        #expect(configuration.sync == .init(interval: .seconds(3600), jitter: .fraction(0.025), pulledPollInterval: .seconds(30),
                                            suspend: .afterCacheTTL, concurrency: 64, backupRetention: .zero, startTimeout: .seconds(120),
                                            retry: .init(attempts: 10, initialDelay: .milliseconds(250), maxDelay: .seconds(60))))
        #expect(configuration.cache == .init(ttl: .seconds(300), capacity: 1))
        #expect(configuration.logging == .init(level: "debug", format: .json))
    }

    @Test(arguments: [("0%", SyncerConfiguration.Sync.Jitter.fraction(0)), ("50%", .fraction(0.5)), ("45s", .fixed(.seconds(45))), ("14m", .fixed(.seconds(840)))])
    func jitterForms(text: String, jitter: SyncerConfiguration.Sync.Jitter) throws {
        #expect(try Fixture.parse(Fixture.yaml("sync:\n  jitter: \(text)\n")).sync.jitter == jitter)
    }

    @Test func jitterMaximum() {
        #expect(SyncerConfiguration.Sync.Jitter.fraction(0.1).maximum(for: .seconds(900)) == .seconds(90))
        #expect(SyncerConfiguration.Sync.Jitter.fraction(0).maximum(for: .seconds(900)) == .zero)
        #expect(SyncerConfiguration.Sync.Jitter.fixed(.seconds(45)).maximum(for: .seconds(900)) == .seconds(45))
    }

    @Test func probeIntervalDefaultsToAMinuteAndCanBeTurnedOff() throws {
        #expect(try Fixture.parse(Fixture.yaml("")).sync.probeInterval == .seconds(60))
        #expect(try Fixture.parse(Fixture.yaml("sync:\n  probe-interval: 10s\n")).sync.probeInterval == .seconds(10))
        #expect(try Fixture.parse(Fixture.yaml("sync:\n  probe-interval: 15m\n")).sync.probeInterval == .seconds(900))
        #expect(try Fixture.parse(Fixture.yaml("sync:\n  probe-interval: off\n")).sync.probeInterval == nil)
    }

    @Test func shortIntervalLowersTheDefaultPollInterval() throws {
        #expect(try Fixture.parse(Fixture.yaml("sync:\n  interval: 1m\n")).sync.pulledPollInterval == .seconds(60))
    }

    @Test func largeInitialDelayRaisesTheDefaultMaxDelay() throws {
        #expect(try Fixture.parse(Fixture.yaml("sync:\n  retry:\n    initial-delay: 30s\n")).sync.retry.maxDelay == .seconds(30))
    }
}
