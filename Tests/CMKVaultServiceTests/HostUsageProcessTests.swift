import CMKAzureTestServer
import CMKVaultLog
import CMKVaultService
import Foundation
import Testing

/// Version usage from the hosts, for real: a cmk-vault and two cmk-syncer hosts on it through
/// their Azure provider with `vault.azure.usage-report: true`. After their passes the service
/// knows each version's accounts, DEKs and hosts; a report ages into stale by its own interval; a
/// host cannot report for another; only platform identities report; and a PATCH that expires or
/// disables a version in use succeeds as on Azure but is recorded as `disabled-in-use`.
@Suite(.serialized) struct HostUsageProcessTests {
    static let key = "data-at-rest-rsa2048"

    /// A host of OneVaultDaemonTests with `vault.azure.usage-report: true`.
    static func host(on vault: VaultProcess, name: String, platform: [String: Any]) throws -> OneVaultDaemonTests.Host {
        let host = try OneVaultDaemonTests.Host.make(on: vault, name: name, platform: platform)
        let text = try String(contentsOfFile: host.config, encoding: .utf8)
        guard text.contains("  azure:\n") else { throw VaultTestError("no vault.azure section in \(host.config)") }
        try text.replacingOccurrences(of: "  azure:\n", with: "  azure:\n    usage-report: true\n").write(toFile: host.config, atomically: true, encoding: .utf8)
        return host
    }

    /// Each version's accounts and DEKs in the host's own last report (`cmkctl status`), in use only.
    static func ownUsage(_ host: OneVaultDaemonTests.Host) throws -> [String: (accounts: Int, deks: Int)] {
        let report = try host.accounts().report
        var usage: [String: (accounts: Int, deks: Int)] = [:]
        for version in report["versions"] as? [[String: Any]] ?? [] {
            let accounts = (version["accounts"] as? [String])?.count ?? 0, deks = version["deks"] as? Int ?? 0
            if accounts > 0 || deks > 0, let id = version["version"] as? String { usage[id] = (accounts, deks) }
        }
        return usage
    }

    @Test("two hosts' reports give each version's accounts, DEKs and hosts; a report ages into stale; no host reports for another; an in-use version's disable is recorded as disabled-in-use")
    func usageFromTwoHosts() async throws {
        let vault = try VaultProcess.start(extra: "vault: {master-key-file: master.key, create-master-key: true, retention-days: 7}")
        defer { vault.stop() }
        let admin = try vault.ctl(["admins", "add", "Ada Admin", "--json"])
        let platforms = [try vault.ctl(["identities", "add", "host-1.example", "--json"]), try vault.ctl(["identities", "add", "host-2.example", "--json"])]
        let principal = try vault.python("key_admin.py", [
            "KEY_ACTION": "principal",
            "ADMIN_CLIENT_ID": try #require(admin["clientId"] as? String), "ADMIN_SECRET": try #require(admin["secret"] as? String),
        ])
        let principalID = try #require(principal["clientId"] as? String), principalSecret = try #require(principal["secret"] as? String)
        func customer(_ action: String) throws -> [String: Any] {
            try vault.python("key_admin.py", ["KEY_ACTION": action, "PRINCIPAL_CLIENT_ID": principalID, "PRINCIPAL_SECRET": principalSecret])
        }
        let first = try #require(try customer("create")["version"] as? String)
        let hosts = [try Self.host(on: vault, name: "host-1", platform: platforms[0]), try Self.host(on: vault, name: "host-2", platform: platforms[1])]
        for host in hosts { #expect(try host.once() == 0) }

        try await VaultHTTPS.with(vault) { https in
            let principalToken = try await https.token(clientID: principalID, secret: principalSecret)
            let adminToken = try await https.token(clientID: try #require(admin["clientId"] as? String), secret: try #require(admin["secret"] as? String))
            var platformTokens: [String] = []
            for platform in platforms {
                platformTokens.append(try await https.token(clientID: try #require(platform["clientId"] as? String), secret: try #require(platform["secret"] as? String)))
            }
            var answers: [[Any]] = []  // for the OpenAPI check: [path, method, status, body]
            func usage(token: String) async throws -> (status: Int, body: [String: Any]) {
                let answer = try await https.send(.GET, "/v1.0/keyUsage", query: "key=\(Self.key)", token: token)
                let body = VaultHTTPS.json(answer)
                answers.append(["/v1.0/keyUsage", "get", answer.status, body])
                return (answer.status, body)
            }
            func versions(_ body: [String: Any]) -> [String: [String: Any]] {
                Dictionary(uniqueKeysWithValues: (body["versions"] as? [[String: Any]] ?? []).map { ($0["version"] as? String ?? "?", $0) })
            }
            func post(_ json: [String: Any], token: String) async throws -> Int {
                let answer = try await https.send(.POST, "/v1.0/usageReports", query: nil, json: json, token: token)
                answers.append(["/v1.0/usageReports", "post", answer.status, answer.body.isEmpty ? NSNull() : VaultHTTPS.json(answer)])
                return answer.status
            }

            // After both passes: the version with every account and DEK of both hosts, on both hosts.
            let own = try hosts.map(Self.ownUsage)
            #expect(own.allSatisfy { Set($0.keys) == [first] }, "\(own)")
            var read = try await usage(token: principalToken)
            #expect(read.status == 200, "\(read.body)")
            var byVersion = versions(read.body)
            #expect(Set(byVersion.keys) == [first], "\(read.body)")
            #expect(byVersion[first]?["accounts"] as? Int == own.map { $0[first]?.accounts ?? 0 }.reduce(0, +))
            #expect(byVersion[first]?["accounts"] as? Int == 2 * OneVaultDaemonTests.kinds.count)
            #expect(byVersion[first]?["deks"] as? Int == own.map { $0[first]?.deks ?? 0 }.reduce(0, +))
            #expect(byVersion[first]?["hosts"] as? [String] == ["host-1.example", "host-2.example"])
            #expect(byVersion[first]?["staleHosts"] as? [String] == [])
            let reported = read.body["hosts"] as? [[String: Any]] ?? []
            #expect(reported.map { $0["host"] as? String } == ["host-1.example", "host-2.example"])
            #expect(reported.allSatisfy { $0["stale"] as? Bool == false && $0["passInterval"] as? Double == 900 && $0["received"] is String }, "\(reported)")
            #expect(try await usage(token: adminToken).status == 200, "administrators read usage too")

            // Only platform identities report, each for its own host: the body cannot name one.
            let host2Before = reported.first { $0["host"] as? String == "host-2.example" }?["syncId"] as? String
            var claim: [String: Any] = ["key": Self.key, "syncId": "forged", "finished": "2026-12-05T07:10:00Z", "passInterval": 900, "accounts": 99,
                                        "versions": [["version": first, "accounts": 99, "deks": 99]]]
            claim["host"] = "host-2.example"
            #expect(try await post(claim, token: platformTokens[0]) == 400, "a report naming a host is refused")
            claim["host"] = nil
            #expect(try await post(claim, token: adminToken) == 403, "an administrator cannot report")
            #expect(try await post(claim, token: principalToken) == 403, "the service principal cannot report")
            read = try await usage(token: principalToken)
            #expect((read.body["hosts"] as? [[String: Any]])?.first { $0["host"] as? String == "host-2.example" }?["syncId"] as? String == host2Before,
                    "host-2's report is untouched")
            #expect(versions(read.body)[first]?["accounts"] as? Int == 2 * OneVaultDaemonTests.kinds.count)

            // A report ages into stale after two of its own intervals: host-2 reports with a 1 s interval.
            let host2 = own[1][first] ?? (0, 0)
            #expect(try await post(["key": Self.key, "syncId": "short-interval", "finished": "2026-12-05T07:10:00Z", "passInterval": 1,
                                    "accounts": host2.accounts, "versions": [["version": first, "accounts": host2.accounts, "deks": host2.deks]]],
                                   token: platformTokens[1]) == 204)
            read = try await usage(token: principalToken)
            #expect(versions(read.body)[first]?["staleHosts"] as? [String] == [], "fresh just after the report")
            try await Task.sleep(for: .milliseconds(2_300))
            read = try await usage(token: principalToken)
            byVersion = versions(read.body)
            #expect(byVersion[first]?["staleHosts"] as? [String] == ["host-2.example"], "\(read.body)")
            #expect(byVersion[first]?["hosts"] as? [String] == ["host-1.example", "host-2.example"], "a stale host still counts")
            #expect((read.body["hosts"] as? [[String: Any]])?.map { $0["stale"] as? Bool } == [false, true])
            #expect(try hosts[1].once() == 0)
            read = try await usage(token: principalToken)
            #expect(versions(read.body)[first]?["staleHosts"] as? [String] == [], "the next pass's report is fresh again")

            // The customer's rotation expires the old version while both hosts still use it: done, but recorded as disabled-in-use.
            let second = try #require(try customer("rotate")["version"] as? String)
            var records = try RotationPolicyProcessTests.records(vault)
            let inUse = records.filter { $0.operation == "disabled-in-use" }
            #expect(inUse.count == 1, "\(records.map(\.operation))")
            #expect(inUse.first?.details["version"] == first)
            #expect(inUse.first?.details["change"] == "expired")
            #expect(inUse.first?.details["hosts"] == "host-1.example,host-2.example")
            #expect(inUse.first?.details["accounts"] == String(2 * OneVaultDaemonTests.kinds.count))
            #expect(inUse.first?.details["hostAccounts"] == "host-1.example=\(own[0][first]?.accounts ?? -1),host-2.example=\(own[1][first]?.accounts ?? -1)")
            #expect(inUse.first?.actor == principalID)
            #expect(!records.contains { $0.operation == "key-updated" }, "the in-use expiry is not also a plain key-updated")
            #expect(vault.log.contains("message_id=\(VaultMessageID.versionDisabledInUse)"), "the journal's warning:\n\(vault.log.suffix(2000))")

            // The hosts rebind; the old version is then used by no host, and disabling it is a plain key-updated.
            for host in hosts { #expect(try host.once() == 0) }
            read = try await usage(token: principalToken)
            byVersion = versions(read.body)
            let stillOld = try hosts.map(Self.ownUsage).map { $0[first] }
            #expect(stillOld.allSatisfy { $0 == nil }, "after the rebind no host reports the old version: \(stillOld)")
            #expect(byVersion[first] == nil && byVersion[second]?["accounts"] as? Int == 2 * OneVaultDaemonTests.kinds.count, "\(read.body)")
            let disable = try await https.send(.PATCH, "/keys/\(Self.key)/\(first)", json: ["attributes": ["enabled": false]], token: principalToken)
            #expect(disable.status == 200, "\(String(decoding: disable.body, as: UTF8.self))")
            records = try RotationPolicyProcessTests.records(vault)
            #expect(records.last?.operation == "key-updated" && records.last?.details["version"] == first, "\(records.suffix(3))")
            #expect(records.filter { $0.operation == "disabled-in-use" }.count == 1)

            // A report the service cannot take never changes the pass: a notice, and the next pass reports again.
            let usageDirectory = vault.state + "/usage"
            try FileManager.default.moveItem(atPath: usageDirectory, toPath: usageDirectory + ".aside")
            _ = FileManager.default.createFile(atPath: usageDirectory, contents: Data(), attributes: [.posixPermissions: 0o600])
            let failing = try hosts[0].run("cmk-syncer", ["run", "--once"])
            let failingLog = String(decoding: failing.output, as: UTF8.self) + failing.errors
            #expect(failing.status == 0, "the pass's outcome is its own: \(failingLog.suffix(2000))")
            #expect(failingLog.contains("The usage report could not be sent to the vault service; the next pass reports again."), "\(failingLog.suffix(2000))")
            try FileManager.default.removeItem(atPath: usageDirectory)
            try FileManager.default.moveItem(atPath: usageDirectory + ".aside", toPath: usageDirectory)
            let again = try hosts[0].run("cmk-syncer", ["run", "--once"])
            #expect(again.status == 0)
            read = try await usage(token: principalToken)
            #expect((read.body["hosts"] as? [[String: Any]])?.first?["syncId"] as? String == (try hosts[0].accounts().report["syncID"] as? String),
                    "the next pass's report arrived: \(read.body)")

            // And disabling the version both hosts use now, through the keys API: succeeds, recorded as disabled-in-use.
            let disableCurrent = try await https.send(.PATCH, "/keys/\(Self.key)/\(second)", json: ["attributes": ["enabled": false]], token: principalToken)
            #expect(disableCurrent.status == 200)
            #expect((VaultHTTPS.json(disableCurrent)["attributes"] as? [String: Any])?["enabled"] as? Bool == false, "answered as Azure does")
            records = try RotationPolicyProcessTests.records(vault)
            #expect(records.last?.operation == "disabled-in-use" && records.last?.details["change"] == "disabled" && records.last?.details["version"] == second)

            let checked = try vault.python("openapi_check.py", ["ANSWERS": String(decoding: try JSONSerialization.data(withJSONObject: answers), as: UTF8.self)])
            #expect(checked["checked"] as? Int == answers.count)
            #expect((checked["problems"] as? [String])?.isEmpty == true, "answers that do not match docs/openapi/cmk-vault.yaml: \(checked["problems"] ?? "")")
        }
    }
}
