import CMKConfiguration
import Foundation
import Testing

/// `events.subscriptions` of cmk-vault: where the service pushes key events.
@Suite struct VaultEventsTests {
    static let vaultBase = "public-url: https://vault.example.com:8443\ntls: {certificate-credential: tls.crt, key-credential: tls.key}\nstate-directory: /var/lib/cmk-vault\n"

    static func vault(_ extra: String) throws(ConfigurationError) -> VaultServiceConfiguration {
        try VaultServiceConfiguration.parse(yaml: vaultBase + extra, file: "/etc/cmk-vault/cmk-vault.yaml", environment: [:], workingDirectory: "/")
    }

    @Test("cmk-vault events.subscriptions: https or loopback http, secret by file or credential, types, ca-file")
    func vaultSubscriptions() throws {
        let events = try #require(try Self.vault("""
            events:
              subscriptions:
                - {name: host-1, endpoint: 'http://127.0.0.1:7443/events', secret-file: host-1.secret}
                - {name: grid, endpoint: 'https://hooks.example.com/cmk', secret-credential: grid.secret, types: [CMK.KeyVault.KeyDeleted], ca-file: /etc/ssl/hooks.pem}
            """).events)
        #expect(events.subscriptions.count == 2)
        #expect(events.subscriptions[0].secret == .file("/var/lib/cmk-vault/host-1.secret"))
        #expect(events.subscriptions[0].types == KeyEventTypes.all)
        #expect(events.subscriptions[1].types == ["CMK.KeyVault.KeyDeleted"])
        #expect(events.subscriptions[1].caFile == "/etc/ssl/hooks.pem")
        func refusal(_ yaml: String) -> ConfigurationError? {
            do { _ = try Self.vault(yaml); return nil } catch { return error }
        }
        var error = refusal("events: {subscriptions: [{name: a, endpoint: 'http://10.0.0.5/e', secret-file: s}]}")
        #expect(error?.keyPath == "events.subscriptions[0].endpoint")
        #expect(error?.reason.contains("the delivery secret must not cross a network in clear") == true, "\(String(describing: error))")
        error = refusal("events: {subscriptions: [{name: a, endpoint: 'https://h/e'}]}")
        #expect(error?.keyPath == "events.subscriptions[0]", "\(String(describing: error))")
        error = refusal("events: {subscriptions: [{name: a, endpoint: 'https://h/e', secret-file: s}, {name: a, endpoint: 'https://i/e', secret-file: s}]}")
        #expect(error?.reason.contains("names two subscriptions") == true, "\(String(describing: error))")
        error = refusal("events: {subscriptions: [{name: a, endpoint: 'https://h/e', secret-file: s, types: [Microsoft.KeyVault.SecretNewVersionCreated]}]}")
        #expect(error?.keyPath == "events.subscriptions[0].types[0]", "\(String(describing: error))")
        error = refusal("events: {subscriptions: [{name: a, endpoint: 'https://h/e', token: abc}]}")
        #expect(error?.code == .inlineSecret, "\(String(describing: error))")
    }
}
