import CMKCore
@testable import CMKConfiguration
import Foundation
import Testing

/// `events` of the daemon (the key event receiver) and `events.subscriptions` of cmk-vault.
@Suite struct EventsTests {
    @Test("events: loopback or unix listen, the secret by file or credential, allowed origins")
    func valid() throws {
        var configuration = try Fixture.parse(Fixture.yaml("events: {listen: '127.0.0.1:7443', secret-file: events.secret, allowed-origins: [Vault.Example.com, eventgrid.azure.net]}\n"))
        let events = try #require(configuration.events)
        #expect(events.listen == .tcp(host: "127.0.0.1", port: 7443))
        #expect(events.secret == .file("/var/lib/cmk-syncer/events.secret"))
        #expect(events.allowedOrigins == ["vault.example.com", "eventgrid.azure.net"])
        configuration = try Fixture.parse(Fixture.yaml("events: {listen: '[::1]:9', secret-credential: events.secret}\n"))
        #expect(configuration.events?.listen == .tcp(host: "::1", port: 9))
        #expect(configuration.events?.secret == .credential("events.secret"))
        configuration = try Fixture.parse(Fixture.yaml("events: {listen: 'unix:/run/cmk-syncer/events.sock', secret-credential: e}\n"))
        #expect(configuration.events?.listen == .unix(path: "/run/cmk-syncer/events.sock"))
        #expect(try Fixture.parse(Fixture.yaml()).events == nil, "off by default")
    }

    @Test("events: a non-loopback address, a missing or doubled secret, an inline secret are refused with the key path")
    func refused() {
        Fixture.expectFailure(Fixture.yaml("events: {listen: '0.0.0.0:7443', secret-file: s}\n"), at: "events.listen",
                              "'0.0.0.0:7443' is not a loopback address or unix socket: the receiver must not be reachable from other machines (accepted: 127.0.0.1:PORT, [::1]:PORT or unix:/absolute/path)")
        Fixture.expectFailure(Fixture.yaml("events: {listen: '127.0.0.1', secret-file: s}\n"), at: "events.listen",
                              "'127.0.0.1' has no port from 1 to 65535 (accepted: 127.0.0.1:PORT, [::1]:PORT or unix:/absolute/path)")
        Fixture.expectFailure(Fixture.yaml("events: {listen: 'unix:relative.sock', secret-file: s}\n"), at: "events.listen",
                              "'unix:relative.sock' is not a unix socket path (an absolute path shorter than 108 bytes; accepted: 127.0.0.1:PORT, [::1]:PORT or unix:/absolute/path)")
        Fixture.expectFailure(Fixture.yaml("events: {listen: '127.0.0.1:1'}\n"), at: "events",
                              "needs exactly one of secret-file (a 0600 file) or secret-credential (a systemd credential name) for the delivery secret")
        Fixture.expectFailure(Fixture.yaml("events: {listen: '127.0.0.1:1', secret-file: a, secret-credential: b}\n"), at: "events.secret-credential",
                              "secret-file and secret-credential are both set: keep exactly one")
        Fixture.expectFailure(Fixture.yaml("events: {listen: '127.0.0.1:1', secret: hunter2hunter2}\n"), at: "events.secret",
                              "secrets are never read from the configuration file: put the delivery secret in a systemd credential (secret-credential) or a 0600 file (secret-file) and name that instead",
                              code: .inlineSecret)
        Fixture.expectFailure(Fixture.yaml("events: {listen: '127.0.0.1:1', secret-file: a, allowed-origins: ['https://x/']}\n"), at: "events.allowed-origins[0]",
                              "'https://x/' is not a host name (accepted: letters, digits, '.', '-', ':', or * for any origin)")
    }

    @Test("the delivery secret: a 0600 file of 16 or more visible characters; a group-readable or short one is refused")
    func secretFile() throws {
        let directory = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/events.secret"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("0123456789abcdef0123\n".utf8), attributes: [.posixPermissions: 0o600]))
        let secret = try EventSecretSource.file(path).read(environment: [:], what: "events.secret")
        #expect(secret.withUnsafeBytes { Array($0) } == Array("0123456789abcdef0123".utf8))
        chmod(path, 0o640)
        #expect(throws: EventSecretSource.ReadError.self) { try EventSecretSource.file(path).read(environment: [:], what: "events.secret") }
        chmod(path, 0o600)
        try Data("short\n".utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try EventSecretSource.file(path).read(environment: [:], what: "events.secret")
            Issue.record("a short secret was accepted")
        } catch {
            #expect(!error.description.contains("short"), "the message must not show the secret")
        }
        #expect(throws: EventSecretSource.ReadError.self) { try EventSecretSource.credential("e").read(environment: [:], what: "events.secret") }
        try Data("fedcba9876543210fedcba".utf8).write(to: URL(fileURLWithPath: path))
        _ = try EventSecretSource.credential("events.secret").read(environment: ["CREDENTIALS_DIRECTORY": directory], what: "events.secret").count
    }
}
