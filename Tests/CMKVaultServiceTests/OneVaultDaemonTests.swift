import CMKAzureTestServer
import CMKTestingHTTP
import Foundation
import Testing

/// A host's cmk-syncer on cmk-vault: the daemon's existing Azure provider, pointed at the vault
/// service with a platform identity, binds every kind of account to the customer's key; the
/// customer's rotate, pull and restore (Microsoft's SDK, as the service principal) reach the host
/// at its next pass. Issue "The customers' runbooks", many hosts on one vault (one host here).
@Suite(.serialized) struct OneVaultDaemonTests {
    struct Host {
        let root: String
        let config: String

        func run(_ binary: String, _ arguments: [String]) throws -> ProcessRunner.Result {
            try ProcessRunner.run(try VaultProcess.binary(binary), arguments + ["--config", config])
        }

        func once() throws -> Int32 { try run("cmk-syncer", ["run", "--once"]).status }

        /// A host's directory under the vault's root with the platform identity's secret in a 0600
        /// file and a cmk-syncer.yaml: the Azure provider on `vault`, one account of each kind
        /// (`-N` after the kind, N the host's number), and `extra` top-level text.
        static func make(on vault: VaultProcess, name: String, platform: [String: Any], extra: String = "") throws -> Host {
            let root = vault.root + "/" + name
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let vaultSection = AzureProviderSection(vaultService: vault.url, tenantID: try vault.tenantID(), clientID: try #require(platform["clientId"] as? String),
                                                    caFile: vault.ca.caCertificatePath, key: "data-at-rest-rsa2048", clientSecretFile: root + "/platform.secret")
            try vaultSection.writeSecret(try #require(platform["secret"] as? String))
            let number = name.split(separator: "-").last.map(String.init) ?? "1"
            let accounts = OneVaultDaemonTests.kinds.enumerated().map { index, kind in
                "  - {name: \(kind)-\(number), kind: \(kind), driver: \(index % 2 == 0 ? "directory" : "sqlite"), location: \(root)/accounts/\(kind)-\(number)\(index % 2 == 0 ? "" : ".sqlite"), create: true}"
            }.joined(separator: "\n")
            let host = Host(root: root, config: root + "/cmk-syncer.yaml")
            try """
                state-directory: \(root)/state
                \(vaultSection.yaml)
                accounts:
                \(accounts)
                \(extra)
                """.write(toFile: host.config, atomically: true, encoding: .utf8)
            return host
        }

        /// `cmkctl status --report-only --json`: the last report's accounts by name.
        func accounts() throws -> (report: [String: Any], accounts: [String: [String: Any]]) {
            let status = try run("cmkctl", ["status", "--report-only", "--json"])
            let document = try #require(try JSONSerialization.jsonObject(with: status.output) as? [String: Any], "\(status.errors)")
            let report = try #require(document["report"] as? [String: Any])
            let list = try #require(report["accounts"] as? [[String: Any]])
            return (report, Dictionary(uniqueKeysWithValues: list.map { ($0["name"] as? String ?? "?", $0) }))
        }
    }

    static let kinds = ["file", "sql", "audit", "analytics", "secret-store"]

    @Test("the Azure provider on cmk-vault with a platform identity: bound, rotated, pulled (reads refused) and restored through the customer's SDK runbooks")
    func hostFollowsTheCustomersKey() throws {
        let vault = try VaultProcess.start(extra: "vault: {master-key-file: master.key, create-master-key: true, retention-days: 7}")
        defer { vault.stop() }
        let admin = try vault.ctl(["admins", "add", "Ada Admin", "--json"])
        let platform = try vault.ctl(["identities", "add", "host-1.example", "--json"])
        let principal = try vault.python("key_admin.py", [
            "KEY_ACTION": "principal",
            "ADMIN_CLIENT_ID": try #require(admin["clientId"] as? String), "ADMIN_SECRET": try #require(admin["secret"] as? String),
        ])
        func customer(_ action: String) throws -> [String: Any] {
            try vault.python("key_admin.py", [
                "KEY_ACTION": action,
                "PRINCIPAL_CLIENT_ID": try #require(principal["clientId"] as? String), "PRINCIPAL_SECRET": try #require(principal["secret"] as? String),
            ])
        }
        let first = try #require(try customer("create")["version"] as? String)

        // The host: the daemon's Azure provider with the platform identity's secret in a 0600 file.
        let host = try Host.make(on: vault, name: "host-1", platform: platform)
        let root = host.root
        #expect(try host.once() == 0)
        var state = try host.accounts()
        #expect(state.report["currentVersion"] as? String == first)
        #expect(state.accounts.count == Self.kinds.count)
        for (name, account) in state.accounts { #expect(account["binding"] as? String == first, "\(name): \(account)") }
        let object = root + "/object.txt"
        try "customer data".write(toFile: object, atomically: true, encoding: .utf8)
        #expect(try host.run("cmkctl", ["data", "put", "audit-1", "log.txt", object]).status == 0)

        // Rotate: a new version and the old one expired now; the next pass rebinds every account.
        let second = try #require(try customer("rotate")["version"] as? String)
        #expect(try host.once() == 0)
        state = try host.accounts()
        for (name, account) in state.accounts { #expect(account["binding"] as? String == second, "\(name): \(account)") }
        #expect(String(decoding: try host.run("cmkctl", ["data", "get", "audit-1", "log.txt"]).output, as: UTF8.self) == "customer data")

        // Pull: the next pass suspends every account and reads are refused.
        _ = try customer("pull")
        #expect(try host.once() == 4)
        state = try host.accounts()
        for (name, account) in state.accounts { #expect(account["suspended"] as? Bool == true, "\(name): \(account)") }
        let refused = try host.run("cmkctl", ["data", "get", "audit-1", "log.txt"])
        #expect(refused.status == 4, "\(refused.errors)")

        // Restore: the next pass resumes every account; the data reads again.
        _ = try customer("restore")
        #expect(try host.once() == 0)
        state = try host.accounts()
        for (name, account) in state.accounts { #expect(account["suspended"] as? Bool == false, "\(name): \(account)") }
        #expect(String(decoding: try host.run("cmkctl", ["data", "get", "audit-1", "log.txt"]).output, as: UTF8.self) == "customer data")

        // The host's unwraps are recorded under its platform identity (the service's event lines
        // follow the security-log records).
        let unwraps = vault.log.split(separator: "\n").filter { $0.contains("CMK_OPERATION=key-unwrapkey") && $0.contains("CMK_ROLE=platform") }
        #expect(!unwraps.isEmpty, "no unwrap by the platform identity in the service's log:\n\(vault.log.suffix(3000))")
    }
}
