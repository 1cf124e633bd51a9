import AsyncHTTPClient
import CMKAzureTestServer
import CMKCore
import CMKIdentity
import CMKTesting
import Foundation
import NIOCore
import NIOSSL
import Testing

/// The real `cmk-vault` over TLS on loopback, with identities added by the real `cmkctl`, driven
/// by Microsoft's `azure-identity` and verified with PyJWT (Scripts/customer_flow.py).
@Suite("cmk-vault: the customer's flow with Microsoft's client library", .serialized)
struct VaultServiceProcessTests {
    @Test("administrator token → add a key (Graph passwordCredential) → service-principal token → it reads the security log → revoke → that token is refused on the log at the next request; duplicate, 17-character, unknown-field, too-late and expired refused; wrong secrets throttled with 429")
    func customerFlow() async throws {
        let vault = try VaultProcess.start(failuresPerClient: 4)
        defer { vault.stop() }
        let admin = try vault.ctl(["admins", "add", "Alice Admin", "--json"])
        let victim = try vault.ctl(["admins", "add", "Bob Admin", "--json"])
        // A key that ended 35 days ago, made in the store the service uses (its API, not SQL).
        let store = try IdentityStore(stateDirectory: vault.state)
        let now = Date()
        let expired = try store.addServicePrincipalCredential(displayName: "old-hsm", endDateTime: now.addingTimeInterval(-35 * 86_400),
                                                              at: now.addingTimeInterval(-400 * 86_400))
        let result = try vault.python("customer_flow.py", [
            "ADMIN_CLIENT_ID": try #require(admin["clientId"] as? String), "ADMIN_SECRET": try #require(admin["secret"] as? String),
            "THROTTLE_CLIENT_ID": try #require(victim["clientId"] as? String), "EXPIRED_SECRET": try #require(expired.secretText),
            "VAULT_FAILURES_PER_CLIENT": "4",
        ])
        #expect(result["admin_roles"] as? [String] == ["administrator"])
        #expect(result["admin_lifetime"] as? Int == 3600, "tokens expire one hour after issue")
        #expect(result["admin_tid"] as? String == store.tenant.tenantID)
        #expect(result["applications_status"] as? Int == 200)
        #expect(result["app_id"] as? String == store.tenant.servicePrincipalClientID)
        #expect(result["add_status"] as? Int == 200)
        #expect(result["add_fields"] as? [String] == ["displayName", "endDateTime", "hint", "keyId", "secretText", "startDateTime"])
        #expect(result["hint_matches"] as? Bool == true)
        #expect((result["secret_length"] as? Int ?? 0) >= 43, "≥ 256 bits")
        #expect(Self.status(result["duplicate"]) == 409, "\(result["duplicate"] ?? "")")
        #expect(Self.status(result["too_long"]) == 400, "\(result["too_long"] ?? "")")
        #expect(Self.message(result["too_long"]).contains("16"), "\(result["too_long"] ?? "")")
        #expect(Self.status(result["unknown_field"]) == 400 && Self.message(result["unknown_field"]).contains("secretText"), "\(result["unknown_field"] ?? "")")
        #expect(Self.status(result["too_far"]) == 400, "\(result["too_far"] ?? "")")
        #expect(Self.status(result["not_json"]) == 400, "\(result["not_json"] ?? "")")
        #expect(result["listed_fields"] as? [String] == ["displayName", "endDateTime", "hint", "keyId", "startDateTime"], "no secret in a listing")
        #expect(result["principal_roles"] as? [String] == ["servicePrincipal"])
        #expect(result["principal_cred"] as? Bool == true)
        #expect(result["principal_on_admin_route_before"] as? Int == 403, "a valid token of another role")
        #expect(Self.status(result["no_token"]) == 401)
        #expect((result["no_token_challenge"] as? String)?.hasPrefix("Bearer authorization=\"\(vault.url)/\(store.tenant.tenantID)\"") == true,
                "\(result["no_token_challenge"] ?? "none")")
        #expect(result["tampered"] as? Int == 401)
        #expect(result["principal_log_before"] as? Int == 200, "the principal reads the Security Logs API with its token")
        #expect((result["principal_log_records"] as? Int ?? 0) >= 1, "\(result["principal_log_records"] ?? "none")")
        #expect(result["principal_log_own_sign_in"] as? Bool == true, "its own token-issued record, naming the key it signed in with")
        #expect(result["revoke_status"] as? Int == 204)
        #expect(Self.status(result["principal_log_after"]) == 401, "the revoked key's token is refused on the log route at the next request")
        #expect(Self.message(result["principal_log_after"]).contains("credential-revoked"), "\(result["principal_log_after"] ?? "")")
        #expect(Self.status(result["principal_on_admin_route_after"]) == 401, "the revoked key's token is refused at the next request")
        #expect(Self.message(result["principal_on_admin_route_after"]).contains("credential-revoked"), "\(result["principal_on_admin_route_after"] ?? "")")
        #expect(result["revoked_secret"] as? String == "AADSTS7000215")
        #expect(result["revoke_again"] as? Int == 404)
        #expect(result["expired_secret"] as? String == "AADSTS7000222")
        #expect(result["wrong_secret"] as? String == "AADSTS7000215")
        #expect(result["unknown_client"] as? String == "AADSTS700016")
        #expect(result["throttle_statuses"] as? [Int] == [401, 401, 401, 401, 429], "\(result["throttle_statuses"] ?? "")")
        #expect(Int(result["throttle_retry_after"] as? String ?? "") ?? 0 > 0)
        #expect(result["openapi_checked"] as? Int == 6)
        #expect((result["openapi_conformance"] as? [String])?.isEmpty == true, "answers that do not match docs/openapi/cmk-vault.yaml: \(result["openapi_conformance"] ?? "")")

        // Nothing the service stored or logged holds a secret.
        let secrets = [admin["secret"], victim["secret"], expired.secretText].compactMap { $0 as? String }
        for file in try FileManager.default.contentsOfDirectory(atPath: vault.state) + ["../vault.log"] {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: vault.state + "/" + file))
            for secret in secrets {
                #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(file) holds a secret")
            }
        }
        let stop = vault.terminate()
        #expect(stop == 0, "exit status after SIGTERM; log:\n\(vault.log)")
    }

    static func status(_ value: Any?) -> Int? { (value as? [Any])?.first as? Int }
    static func message(_ value: Any?) -> String {
        guard let pair = value as? [Any], pair.count > 1 else { return "" }
        return ((pair[1] as? [String: Any])?["error"] as? [String: Any])?["message"] as? String ?? "\(pair[1])"
    }
}

/// Socket activation and readiness as systemd does them, with systemd's own tool: the socket is
/// bound by `systemd-socket-activate` (as by cmk-vault.socket), the service starts on the first
/// connection, takes the socket through `sd_listen_fds`, says READY=1 on `$NOTIFY_SOCKET`, and
/// stops on SIGTERM with exit 0.
@Suite("cmk-vault under socket activation")
struct VaultSocketActivationTests {
    @Test("listen: systemd — the inherited socket serves HTTPS; READY=1 and STATUS= name the tenant; SIGTERM exits 0")
    func inheritedSocket() async throws {
        let tool = "/usr/bin/systemd-socket-activate"
        try #require(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is missing: install the Debian package 'systemd' (scripts/install-deps.sh does)")
        let ca = try TestCertificateAuthority.make()
        defer { ca.remove() }
        let root = NSTemporaryDirectory() + "cmk-vault-sa-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let port = try LoopbackPort.free()
        try """
            state-directory: \(root)/state
            public-url: https://127.0.0.1:\(port)
            listen: systemd
            tls: {certificate-file: \(ca.server.certificatePath), key-file: \(ca.server.privateKeyPath)}
            logging: {format: text}
            """.write(toFile: root + "/cmk-vault.yaml", atomically: true, encoding: .utf8)
        chmod(root + "/cmk-vault.yaml", 0o600)
        let notify = try NotifyListener(directory: root)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["-l", "127.0.0.1:\(port)", "-E", "NOTIFY_SOCKET=\(notify.path)",
                             try VaultProcess.binary("cmk-vault"), "run", "--config", root + "/cmk-vault.yaml"]
        _ = FileManager.default.createFile(atPath: root + "/vault.log", contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/vault.log"))
        process.standardError = process.standardOutput
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        var log: String { (try? String(contentsOfFile: root + "/vault.log", encoding: .utf8)) ?? "" }

        // The first connection starts the service; the request waits in the backlog until it accepts.
        let deadline = Date().addingTimeInterval(10)
        while !log.contains("Listening on"), Date() < deadline { usleep(20_000) }
        // In-process client (a second child process would race Foundation's reaping of the first).
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(ca.caCertificatePath)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        var answer = ""
        do {
            let response = try await client.execute(HTTPClientRequest(url: "https://127.0.0.1:\(port)/unknown-tenant/v2.0/.well-known/openid-configuration"),
                                                    timeout: .seconds(20))
            answer = String(buffer: try await response.body.collect(upTo: 1 << 16))
            try await client.shutdown()
        } catch {
            try? await client.shutdown()
            Issue.record("the request through the inherited socket failed: \(error); log:\n\(log)")

        }
        #expect(answer.contains("AADSTS90002"), "\(answer)")
        let ready = notify.next(within: .seconds(20))
        #expect(ready?["READY"] == "1", "no READY=1: \(ready?.description ?? "nothing"); log:\n\(log)")
        #expect(ready?["STATUS"]?.hasPrefix("serving tenant ") == true)
        #expect(log.contains("The vault service is listening.") && log.contains("Execing"), "\(log)")

        kill(process.processIdentifier, SIGTERM)
        let stopDeadline = Date().addingTimeInterval(15)
        while process.isRunning, Date() < stopDeadline { usleep(20_000) }
        #expect(!process.isRunning && process.terminationStatus == 0, "after SIGTERM: running \(process.isRunning); log:\n\(log)")
        #expect(!log.contains("ERROR"), "a clean stop logs no error:\n\(log)")
    }

    @Test("cmk-vault --version prints the product's version")
    func version() throws {
        let run = try ProcessRunner.run(try VaultProcess.binary("cmk-vault"), ["--version"])
        #expect(run.status == 0 && String(decoding: run.output, as: UTF8.self) == CMKVersion.current + "\n", "\(run.status) \(run.errors)")
    }

    @Test("listen: systemd without a socket from systemd: exit 78 naming the fix")
    func noSocket() throws {
        let root = NSTemporaryDirectory() + "cmk-vault-ns-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let ca = try TestCertificateAuthority.make()
        defer { ca.remove() }
        try """
            state-directory: \(root)/state
            public-url: https://127.0.0.1:8443
            tls: {certificate-file: \(ca.server.certificatePath), key-file: \(ca.server.privateKeyPath)}
            logging: {format: text}
            """.write(toFile: root + "/cmk-vault.yaml", atomically: true, encoding: .utf8)
        chmod(root + "/cmk-vault.yaml", 0o600)
        var environment = ProcessInfo.processInfo.environment
        environment["LISTEN_FDS"] = nil
        environment["LISTEN_PID"] = nil
        let run = try ProcessRunner.run(try VaultProcess.binary("cmk-vault"), ["run", "--config", root + "/cmk-vault.yaml"], environment: environment)
        #expect(run.status == 78, "exit \(run.status): \(run.errors)")
        #expect(run.errors.contains("no listening socket was passed") && run.errors.contains("cmk-vault.socket"), "\(run.errors)")
    }
}

/// Hostile input against the real service: limits hold and nothing is answered beyond them.
@Suite("cmk-vault: limits on hostile input")
struct VaultHostileInputTests {
    @Test("a body over limits.max-body-bytes is 413, a header over limits.max-header-bytes is refused, a parameter given twice and a non-form body are 400, a garbage bearer is 401")
    func limits() async throws {
        let vault = try VaultProcess.start()
        defer { vault.stop() }
        let tenant = try vault.tenantID()
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(vault.ca.caCertificatePath)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        func send(_ path: String, body: String? = nil, headers: [(String, String)] = [], contentType: String = "application/x-www-form-urlencoded") async throws -> (Int, String) {
            var request = HTTPClientRequest(url: vault.url + path)
            if let body {
                request.method = .POST
                request.body = .bytes(ByteBuffer(string: body))
                request.headers.add(name: "Content-Type", value: contentType)
            }
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            let response = try await client.execute(request, timeout: .seconds(20))
            return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
        }
        do {
            let big = "grant_type=client_credentials&client_id=x&client_secret=" + String(repeating: "a", count: 70_000) + "&scope=s/.default"
            let tooLarge = try await send("/\(tenant)/oauth2/v2.0/token", body: big)
            #expect(tooLarge.0 == 413, "\(tooLarge)")
            let twice = try await send("/\(tenant)/oauth2/v2.0/token", body: "grant_type=client_credentials&client_id=a&client_id=b&client_secret=x&scope=s/.default")
            #expect(twice.0 == 400 && twice.1.contains("client_id"), "\(twice)")
            let json = try await send("/\(tenant)/oauth2/v2.0/token", body: "{}", contentType: "application/json")
            #expect(json.0 == 400, "\(json)")
            let garbage = try await send("/v1.0/applications", headers: [("Authorization", "Bearer not.a.token")])
            #expect(garbage.0 == 401 && garbage.1.contains("malformed"), "\(garbage)")
            do {
                let huge = try await send("/v1.0/applications", headers: [("X-Padding", String(repeating: "p", count: 20_000))])
                #expect(huge.0 >= 400, "a 20 KB header field was answered \(huge.0)")
            } catch let error as HTTPClientError where error == .remoteConnectionClosed {
                // The service closes the connection on an oversized head without answering: refused, as intended.
            }
            // The service still answers after all of it.
            let after = try await send("/\(tenant)/v2.0/.well-known/openid-configuration")
            #expect(after.0 == 200, "\(after)")
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}
