import CMKAzureTestServer
import CMKIdentity
import CMKTransparency
import CMKVaultLog
import Foundation
import Testing

/// The Security Logs API of a real cmk-vault over loopback TLS, checked by the customer's side:
/// azure-identity for the token, and the independent RFC 9162 / C2SP verifier
/// (Tests/CMKTransparencyTests/Scripts/tlog_verify.py) for checkpoints and proofs
/// (Scripts/security_log_flow.py).
@Suite("cmk-vault: the Security Logs API, verified by the customer", .serialized)
struct SecurityLogAPITests {
    @Test("events become records; checkpoints, inclusion and consistency proofs verify independently; a tampered record is rejected; access lists who can touch the key")
    func verifiedByCustomer() async throws {
        let vault = try VaultProcess.start()
        defer { vault.stop() }
        let admin = try vault.ctl(["admins", "add", "Log Reader", "--json"])
        let platform = try vault.ctl(["identities", "add", "node-7.example", "--json"])
        let adminID = try #require(admin["clientId"] as? String)
        let adminSecret = try #require(admin["secret"] as? String)
        let result = try vault.python("security_log_flow.py", [
            "ADMIN_CLIENT_ID": adminID, "ADMIN_SECRET": adminSecret,
            "PLATFORM_CLIENT_ID": try #require(platform["clientId"] as? String), "PLATFORM_SECRET": try #require(platform["secret"] as? String),
        ])

        #expect(result["failed_sign_ins"] as? [Bool] == [true, true, true])
        #expect(result["public_key_status"] as? Int == 200)
        let tenant = try vault.tenantID()
        #expect(result["origin"] as? String == "127.0.0.1/cmk-vault/\(tenant)")
        #expect((result["verifier_key"] as? String)?.hasPrefix("127.0.0.1/cmk-vault/\(tenant)+") == true)
        #expect(result["checkpoint_status"] as? Int == 200)
        #expect(result["checkpoint_content_type"] as? String == "text/plain; charset=utf-8")
        #expect(result["checkpoint_time"] is String)
        #expect(result["checkpoint_again_same"] as? Bool == true)

        // token-issued, 2 failures, add + revoke; then 1 failure, add + revoke.
        let sizes = try #require(result["checkpoint_sizes"] as? [Int])
        #expect(sizes == [5, 8], "\(sizes)")
        #expect(result["record_count"] as? Int == 8)
        #expect(result["pages"] as? Int == 3, "8 records, 3 a page")
        #expect((result["openapi_checked"] as? Int ?? 0) >= 9, "answers checked against docs/openapi/cmk-vault.yaml: \(result["openapi_checked"] ?? 0)")
        #expect((result["openapi_conformance"] as? [String])?.isEmpty == true, "answers that do not match docs/openapi/cmk-vault.yaml: \(result["openapi_conformance"] ?? "")")
        #expect(result["indices_in_order"] as? Bool == true)
        #expect(result["leaf_is_canonical_record"] as? Bool == true)
        #expect(result["operations"] as? [String] == ["authentication-failed", "credential-added", "credential-revoked", "token-issued"])
        #expect(result["secret_in_records"] as? Bool == false)
        #expect(result["revoked_by_admin"] as? Bool == true)
        #expect(result["filter_operation"] as? [String] == ["authentication-failed"])
        #expect(result["filter_operation_count"] as? Int == 3)
        #expect(result["filter_actor_only_admin"] as? Bool == true)
        #expect(result["filter_future_count"] as? Int == 0)

        let honest = try #require(result["verify_honest"] as? [String: Any])
        #expect(honest["exit"] as? Int == 0, "\(honest)")
        #expect((honest["checked"] as? Int ?? 0) >= 1, "\(honest)")
        #expect(result["tampered_differs"] as? Bool == true)
        let tampered = try #require(result["verify_tampered"] as? [String: Any])
        #expect(tampered["exit"] as? Int == 1, "\(tampered)")
        #expect((tampered["last"] as? String)?.hasPrefix("REJECTED:") == true, "\(tampered)")

        let errors = try #require(result["errors"] as? [String: Int])
        for name in ["index_not_below_size", "size_beyond_tree", "from_above_to", "negative", "top_too_large", "unknown_parameter", "bad_time"] {
            #expect(errors[name] == 400, "\(name): \(errors[name] ?? 0)")
        }
        #expect(errors["no_token"] == 401)
        #expect(result["error_shape"] as? [String] == ["code", "message"])

        #expect(result["access_status"] as? Int == 200)
        #expect(result["access_admins"] as? [String] == [adminID])
        #expect(result["access_admin_last_used"] as? Bool == true, "the administrator signed in: its last use is listed")
        #expect(result["access_keys"] as? [String] == [], "both keys were revoked")
        #expect(result["access_platform"] as? [String] == [try #require(platform["name"] as? String)])
        #expect(result["reads_not_logged"] as? Bool == true)
        #expect(result["service_principal_records"] as? Int == 200, "the service principal reads the log")
        #expect(result["service_principal_checkpoint"] as? Int == 200)
        #expect(result["platform_records"] as? Int == 403, "a platform identity may not read the log")
        #expect(result["platform_access"] as? Int == 403)
        #expect(result["platform_denial_recorded"] as? Bool == true, "each refusal is an access-denied record naming the platform identity")

        // The operator's copy of the key, for the customer to pin, is the one the service publishes.
        let pinned = try vault.ctl(["vault", "log-key", "--json"])
        #expect(pinned["verifierKey"] as? String == result["verifier_key"] as? String)
        #expect(pinned["origin"] as? String == result["origin"] as? String)
        let plain = try ProcessRunner.run(try VaultProcess.binary("cmkctl"), ["vault", "log-key", "--vault-state", vault.state])
        #expect(plain.status == 0)
        #expect(String(decoding: plain.output, as: UTF8.self) == (result["verifier_key"] as? String ?? "-") + "\n")
        let empty = NSTemporaryDirectory() + "cmk-vault-empty-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let missing = try ProcessRunner.run(try VaultProcess.binary("cmkctl"), ["vault", "log-key", "--vault-state", empty])
        #expect(missing.status == 1, "no key yet: exit 1")
        #expect(missing.errors.contains("log-signing.key"), "\(missing.errors)")

        // No secret in the log's files either, and they are private.
        for file in ["security-log.sqlite", "security-log.sqlite-wal", "log-signing.key"] {
            let path = vault.state + "/" + file
            guard let bytes = FileManager.default.contents(atPath: path) else { continue }
            #expect(bytes.range(of: Data(adminSecret.utf8)) == nil, "\(file) holds the administrator's secret")
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file): \(String(mode ?? 0, radix: 8))")
        }
    }

    @Test("kill -9 while requests append leaves a log that reopens consistent; a log then truncated under its last signed checkpoint stops the next start")
    func crashThenRollback() async throws {
        let vault = try VaultProcess.start(failuresPerClient: 10_000)
        defer { vault.stop() }
        let tenant = try vault.tenantID()
        // Four threads of failed sign-ins: each is an append (authentication-failed or -throttled).
        let load = Process()
        load.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        load.arguments = ["python3", "-c", """
            import ssl, sys, threading, urllib.request, urllib.error
            url, tenant, ca = sys.argv[1:4]
            context = ssl.create_default_context(cafile=ca)
            body = b"grant_type=client_credentials&client_id=00000000-0000-4000-8000-000000000bad&client_secret=wrong&scope=" + url.encode() + b"/.default"
            def hammer():
                while True:
                    request = urllib.request.Request(url + "/" + tenant + "/oauth2/v2.0/token", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
                    try:
                        urllib.request.urlopen(request, context=context).read()
                    except urllib.error.HTTPError:
                        pass
                    except Exception:
                        return
            threads = [threading.Thread(target=hammer) for _ in range(4)]
            [thread.start() for thread in threads]
            [thread.join() for thread in threads]
            """, vault.url, tenant, vault.ca.caCertificatePath]
        load.standardOutput = FileHandle.nullDevice
        load.standardError = FileHandle.nullDevice
        try load.run()
        defer { if load.isRunning { kill(load.processIdentifier, SIGKILL) } }
        let origin = "127.0.0.1/cmk-vault/\(tenant)"
        let logPath = vault.state + "/" + VaultSecurityLog.fileName
        let deadline = Date().addingTimeInterval(20)
        var records: UInt64 = 0
        while records < 50, Date() < deadline {
            usleep(100_000)
            records = (try? VaultSecurityLog(stateDirectory: vault.state, origin: origin).size()) ?? 0
        }
        #expect(records >= 50, "the load made \(records) records")
        kill(vault.process.processIdentifier, SIGKILL)
        vault.process.waitUntilExit()
        kill(load.processIdentifier, SIGKILL)
        load.waitUntilExit()

        // Reopening checks that records and leaves agree; every served leaf hashes to its tree leaf.
        let log = try VaultSecurityLog(stateDirectory: vault.state, origin: origin)
        let size = try log.size()
        #expect(size >= records)
        var memory = MerkleTree()
        var start: UInt64 = 0
        while true {
            let page = try log.records(.init(startIndex: start, limit: 500))
            for entry in page.leaves { try memory.append(record: entry.leaf) }
            guard let next = page.nextIndex else { break }
            start = next
        }
        #expect(try memory.size() == size)
        let signed = try log.checkpoint()
        #expect(signed.rootHash == (try memory.rootHash()))

        // Cut the last two records (and the nodes above them) behind the service's back.
        let cut = try ProcessRunner.run("/usr/bin/env", ["python3", "-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            keep = int(sys.argv[2])
            db.execute("DELETE FROM records WHERE idx >= ?", (keep,))
            db.execute("DELETE FROM nodes WHERE ((idx + 1) << level) > ?", (keep,))
            db.commit()
            """, logPath, String(size - 2)])
        #expect(cut.status == 0, "\(cut.errors)")
        let restart = Process()
        restart.executableURL = URL(fileURLWithPath: try VaultProcess.binary("cmk-vault"))
        restart.arguments = ["run", "--config", vault.config]
        let output = vault.root + "/restart.log"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        restart.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        restart.standardError = restart.standardOutput
        try restart.run()
        let stopBy = Date().addingTimeInterval(20)
        while restart.isRunning, Date() < stopBy { usleep(50_000) }
        let started = restart.isRunning
        if started {
            kill(restart.processIdentifier, SIGKILL)
            restart.waitUntilExit()
        }
        #expect(!started, "cmk-vault started on a log shorter than its last signed checkpoint")
        #expect(restart.terminationStatus == 1, "a log shorter than its last checkpoint must stop the start with exit 1")
        let said = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(said.contains("does not start") && said.contains(VaultSecurityLog.fileName), "\(said.suffix(2000))")
    }
}
