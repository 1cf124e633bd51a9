@testable import CMKConfiguration
import Testing

/// `metrics.listen` (docs/configuration.md, docs/metrics.md): off by default; loopback or a unix
/// socket; every other value refused at its key with the accepted forms.
@Suite struct MetricsSettingTests {
    static let accepted = "(accepted: 127.0.0.1:PORT, [::1]:PORT or unix:/absolute/path)"

    @Test("metrics.listen: 127.x.y.z:PORT, [::1]:PORT and unix:/path are accepted; no metrics section is off")
    func accepted() throws {
        #expect(try Fixture.parse(Fixture.yaml()).metrics == nil, "off by default")
        #expect(try Fixture.parse(Fixture.yaml("metrics: {listen: '127.0.0.1:9464'}\n")).metrics?.listen == .tcp(host: "127.0.0.1", port: 9464))
        #expect(try Fixture.parse(Fixture.yaml("metrics: {listen: '127.8.9.10:1'}\n")).metrics?.listen == .tcp(host: "127.8.9.10", port: 1))
        #expect(try Fixture.parse(Fixture.yaml("metrics: {listen: '[::1]:65535'}\n")).metrics?.listen == .tcp(host: "::1", port: 65_535))
        #expect(try Fixture.parse(Fixture.yaml("metrics: {listen: 'unix:/run/cmk-syncer/./metrics.sock'}\n")).metrics?.listen
                == .unix(path: "/run/cmk-syncer/metrics.sock"))
    }

    @Test("metrics.listen: other machines' addresses, no port, a bad port, a relative or long socket path, a non-string are refused at the key")
    func refused() {
        for address in ["0.0.0.0:9464", "192.168.1.4:9464", "[::]:9464", "localhost:9464", ":9464", "[fe80::1]:9464"] {
            Fixture.expectFailure(Fixture.yaml("metrics: {listen: '\(address)'}\n"), at: "metrics.listen",
                                  "'\(address)' is not a loopback address or unix socket: the metrics endpoint must not be reachable from other machines \(Self.accepted)")
        }
        Fixture.expectFailure(Fixture.yaml("metrics: {listen: '127.0.0.1'}\n"), at: "metrics.listen",
                              "'127.0.0.1' has no port from 1 to 65535 \(Self.accepted)")
        Fixture.expectFailure(Fixture.yaml("metrics: {listen: '127.0.0.1:0'}\n"), at: "metrics.listen",
                              "'127.0.0.1:0' has no port from 1 to 65535 \(Self.accepted)")
        Fixture.expectFailure(Fixture.yaml("metrics: {listen: '[::1]:70000'}\n"), at: "metrics.listen",
                              "'[::1]:70000' has no port from 1 to 65535 \(Self.accepted)")
        Fixture.expectFailure(Fixture.yaml("metrics: {listen: '127.0.0.256:9464'}\n"), at: "metrics.listen",
                              "'127.0.0.256:9464' is not a loopback address \(Self.accepted)")
        Fixture.expectFailure(Fixture.yaml("metrics: {listen: 'unix:metrics.sock'}\n"), at: "metrics.listen",
                              "'unix:metrics.sock' is not a unix socket path (an absolute path shorter than 108 bytes; accepted: 127.0.0.1:PORT, [::1]:PORT or unix:/absolute/path)")
        let long = "unix:/" + String(repeating: "m", count: 110)
        // The value is shortened in the message (Excerpt).
        Fixture.expectFailure(Fixture.yaml("metrics: {listen: '\(long)'}\n"), at: "metrics.listen",
                              "'\(long.prefix(32))…' is not a unix socket path (an absolute path shorter than 108 bytes; accepted: 127.0.0.1:PORT, [::1]:PORT or unix:/absolute/path)")
        Fixture.expectFailure(Fixture.yaml("metrics: {}\n"), at: "metrics.listen",
                              "is required when metrics is set (accepted: 127.0.0.1:PORT, [::1]:PORT or unix:/absolute/path; remove metrics to turn the endpoint off)")
        for (yaml, key) in [("metrics: {listen: '127.0.0.1:9464', port: 9464}\n", "metrics.port"),
                            ("metrics: {listen: [127.0.0.1]}\n", "metrics.listen"), ("metrics: '127.0.0.1:9464'\n", "metrics")] {
            #expect(Fixture.failure(Fixture.yaml(yaml))?.keyPath == key, "\(yaml)")
        }
    }
}
