import CMKTesting
import Foundation
import Testing

/// The repository's `cmk-vault.socket` and `cmk-vault.service` under a real systemd system manager
/// (``SystemdSandbox``: PID, mount, network… namespaces of their own, tmpfs /run, /tmp and /var,
/// an overlay on /etc): the first HTTPS connection starts the service, which reaches
/// `active (running)` only after READY=1 and answers; `systemctl stop` is clean; a bad
/// configuration exits 78 and is not restarted.
///
/// What differs from the shipped units, and why:
/// - `ExecStart=` runs the built `cmk-vault` from the sandbox's own /run (the checkout may sit
///   under /tmp, which the sandbox's tmpfs and the unit's `PrivateTmp=yes` hide). Nothing else in
///   either unit changes: the socket keeps `ListenStream=8443` (the sandbox has a network
///   namespace of its own, so no port on the host is taken), the service keeps `DynamicUser=yes`,
///   `LoadCredential=tls.crt:/etc/cmk-vault/tls.crt` and `tls.key`, and all of its hardening.
/// - /etc/cmk-vault holds a configuration (`public-url: https://127.0.0.1:8443`) and a
///   throw-away CA's server certificate and key made with openssl; the test's curl trusts that CA.
/// - /run is made a shared mount inside the sandbox. systemd makes / shared at boot only outside
///   a container, and the sandbox looks like one; without it the ramfs systemd 252 mounts for
///   `LoadCredential=` (in a child mount namespace, then moved to /run/credentials/UNIT) never
///   reaches the manager's namespace, and the service finds only an empty root-owned 0700
///   directory ("Permission denied"). This is a change to the sandbox's private mounts, not to
///   the host's and not to the units.
/// The HTTPS requests are made by curl inside the sandbox: the socket lives in its network
/// namespace, which the test process cannot reach.
@Suite("cmk-vault units under systemd", .serialized)
struct VaultUnitTests {
    static let service = "cmk-vault.service"
    static let socket = "cmk-vault.socket"
    static let installedBinary = "/run/cmk-vault-test/cmk-vault"
    static let publicURL = "https://127.0.0.1:8443"
    static let listeningMessageID = "3f0a3a8a9c7f4b5e8d2c6e1b7a4f9d21"

    static let configuration = """
        # The shipped example's shape: the socket of cmk-vault.socket, TLS from the unit's credentials.
        public-url: \(publicURL)
        listen: systemd
        tls:
          certificate-credential: tls.crt
          key-credential: tls.key
        logging: {level: info, format: auto}

        """

    /// The shipped service with only `ExecStart=`'s binary path changed.
    static func derivedService() throws -> String {
        let text = try String(contentsOfFile: TestPaths.packageRoot + "/systemd/" + service, encoding: .utf8)
        let old = "\nExecStart=/usr/bin/cmk-vault "
        guard text.contains(old) else { throw HarnessError("systemd/\(service) no longer contains '\(old.dropFirst())': update the test's rewrite") }
        return text.replacingOccurrences(of: old, with: "\nExecStart=\(installedBinary) ")
    }

    /// A CA of its own and a server certificate for 127.0.0.1 and localhost, both P-256, valid one day.
    struct Certificates {
        let caPath: String
        let certificate: String
        let key: String
    }

    static func makeCertificates(in directory: TemporaryDirectory) throws -> Certificates {
        let openssl = try TestPaths.tool("/usr/bin/openssl", package: "openssl")
        let dir = directory.path
        try directory.write("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n", to: "tls.ext")
        for arguments in [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=cmk-vault systemd test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", "-keyout", dir + "/ca.key", "-out", dir + "/ca.crt"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", dir + "/tls.key", "-out", dir + "/tls.csr"],
            ["x509", "-req", "-in", dir + "/tls.csr", "-CA", dir + "/ca.crt", "-CAkey", dir + "/ca.key", "-CAcreateserial", "-days", "1",
             "-extfile", dir + "/tls.ext", "-out", dir + "/tls.crt"],
        ] {
            let result = try Command.run(openssl, arguments)
            guard result.status == 0 else { throw HarnessError("openssl \(arguments[0]) failed: \(result.stderr)") }
        }
        return Certificates(caPath: dir + "/ca.crt",
                            certificate: try String(contentsOfFile: dir + "/tls.crt", encoding: .utf8),
                            key: try String(contentsOfFile: dir + "/tls.key", encoding: .utf8))
    }

    /// A booted sandbox with both units, /etc/cmk-vault filled, the binary installed and /run shared.
    static func sandbox(configuration: String, certificates: TemporaryDirectory) throws -> (SystemdSandbox, caPath: String) {
        _ = try TestPaths.tool("/usr/bin/curl", package: "curl")
        let binary = try BuiltExecutables.path("cmk-vault")
        let tls = try makeCertificates(in: certificates)
        let sandbox = try SystemdSandbox(
            units: [socket: try String(contentsOfFile: TestPaths.packageRoot + "/systemd/" + socket, encoding: .utf8), service: try derivedService()],
            etc: ["cmk-vault/cmk-vault.yaml": (configuration, 0o644), "cmk-vault/tls.crt": (tls.certificate, 0o644), "cmk-vault/tls.key": (tls.key, 0o600)])
        // The CA and the binary go where the sandbox sees them: its work directory (the same path inside).
        let ca = sandbox.work.path + "/ca.crt"
        try FileManager.default.copyItem(atPath: tls.caPath, toPath: ca)
        try FileManager.default.copyItem(atPath: binary, toPath: sandbox.work.path + "/cmk-vault.bin")
        let install = try sandbox.run("install", "-D", "-m", "0755", sandbox.work.path + "/cmk-vault.bin", installedBinary)
        guard install.status == 0 else { throw HarnessError("cannot install cmk-vault in the sandbox: \(install.stderr)") }
        let shared = try sandbox.run("mount", "--make-shared", "/run")
        guard shared.status == 0 else { throw HarnessError("mount --make-shared /run in the sandbox: \(shared.stderr)") }
        try sandbox.installCatalogs([TestPaths.packageRoot + "/systemd/cmk-vault.catalog"])
        return (sandbox, ca)
    }

    /// One HTTPS GET from inside the sandbox; the HTTP status is 0 when no answer came.
    static func get(_ sandbox: SystemdSandbox, ca: String, _ path: String) throws -> (curl: Int32, http: Int, body: String, error: String) {
        let result = try sandbox.run("curl", "-sS", "--max-time", "40", "--cacert", ca, "-w", "\n%{http_code}", publicURL + path)
        var lines = result.stdout.components(separatedBy: "\n")
        let code = Int(lines.removeLast()) ?? 0
        return (result.status, code, lines.joined(separator: "\n"), result.stderr)
    }

    static func journal(_ sandbox: SystemdSandbox) -> String {
        (try? sandbox.run("journalctl", "-x", "--no-pager", "-u", service).stdout) ?? ""
    }

    @Test("The first HTTPS connection starts the service: READY after listening, STATUS, the tenant's discovery document; clean stop; the next connection starts it again")
    func socketActivation() throws {
        let certificates = try TemporaryDirectory(prefix: "vault-ca")
        let (sandbox, ca) = try Self.sandbox(configuration: Self.configuration, certificates: certificates)

        let listen = try sandbox.run("systemctl", "start", Self.socket)
        #expect(listen.status == 0, "systemctl start \(Self.socket): \(listen.stderr)")
        let listening = try sandbox.show(Self.socket, "ActiveState", "SubState", "Listen")
        let idle = try sandbox.show(Self.service, "ActiveState")
        try #require(listening["ActiveState"] == "active" && listening["SubState"] == "listening", "\(Self.socket): \(listening)")
        #expect(listening["Listen"]?.contains(":8443 (Stream)") == true, "the shipped ListenStream=8443: \(listening)")
        #expect(idle["ActiveState"] == "inactive", "the service must not run before a connection: \(idle)")

        // The first connection: systemd starts the service and hands it the socket; the answer
        // (an unknown tenant) comes from the service itself.
        let first = try Self.get(sandbox, ca: ca, "/not-a-tenant/v2.0/.well-known/openid-configuration")
        #expect(first.curl == 0 && first.http == 400 && first.body.contains("AADSTS90002"),
                "first request: curl \(first.curl) HTTP \(first.http) \(first.body) \(first.error)\n\(Self.journal(sandbox))")
        let started = try sandbox.show(Self.service, "ActiveState", "SubState", "StatusText", "MainPID", "NRestarts", "TriggeredBy",
                                       "ActiveEnterTimestampMonotonic", "User", "DynamicUser")
        try #require(started["ActiveState"] == "active" && started["SubState"] == "running",
                     "after the first connection: \(started)\n\(Self.journal(sandbox))")
        #expect(started["NRestarts"] == "0" && started["TriggeredBy"] == Self.socket, "\(started)")
        let status = try #require(started["StatusText"], "\(started)")
        let match = try #require(status.firstMatch(of: #/^serving tenant ([0-9a-f-]{36}) at (.+)$/#), "STATUS= line: '\(status)'")
        let tenant = String(match.1)
        #expect(String(match.2) == Self.publicURL, "STATUS= line: '\(status)'")
        let systemctlStatus = try sandbox.run("systemctl", "status", "--no-pager", "--lines=4", Self.service)
        #expect(systemctlStatus.stdout.contains("Active: active (running)") && systemctlStatus.stdout.contains("Status: \"serving tenant \(tenant) at \(Self.publicURL)\"")
                && systemctlStatus.stdout.contains("TriggeredBy: ● \(Self.socket)"), "systemctl status:\n\(systemctlStatus.stdout)")
        print("vault unit: first connection → \(started)\n\(systemctlStatus.stdout)")

        // Type=notify: the manager made the unit active only after READY=1, which the service
        // sends once it accepts; the journal's "listening" entry comes first.
        let entry = try sandbox.run("journalctl", "-o", "json", "--no-pager", "-u", Self.service, "MESSAGE_ID=\(Self.listeningMessageID)")
        let fieldsOfEntry = entry.stdout.split(separator: "\n").first.flatMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
        // journald stamps an entry when it reads it, which can be after the manager has handled the
        // READY=1 sent just after it; the time the service sent it is _SOURCE_REALTIME_TIMESTAMP (the
        // datagram's kernel timestamp on the native socket), carried onto the monotonic clock by the
        // receive time's two clocks.
        func time(_ name: String) -> Int64? { (fieldsOfEntry?[name] as? String).flatMap { Int64($0) } }
        let received = try #require(time("__MONOTONIC_TIMESTAMP"), "no 'listening' entry with a monotonic time in the journal: \(entry.stdout)\(entry.stderr)")
        let sentBefore = try #require(time("__REALTIME_TIMESTAMP").flatMap { realtime in time("_SOURCE_REALTIME_TIMESTAMP").map { realtime - $0 } },
                                      "the 'listening' entry has no _SOURCE_REALTIME_TIMESTAMP (not sent through the native journal socket?): \(entry.stdout)")
        #expect(sentBefore >= 0 && sentBefore < 5_000_000, "journald read the entry \(sentBefore) µs after it was sent")
        let listenedAt = UInt64(max(0, received - sentBefore))
        let activeAt = try #require(started["ActiveEnterTimestampMonotonic"].flatMap { UInt64($0) })
        #expect(listenedAt <= activeAt, "the unit became active (\(activeAt) µs) before the service was listening (\(listenedAt) µs): READY=1 was not waited for")

        // The service runs as its own dynamic user, with the credentials systemd loaded for it.
        let pid = try #require(started["MainPID"].flatMap { Int($0) }.flatMap { $0 > 1 ? $0 : nil }, "MainPID: \(started)")
        let identity = try sandbox.run("sh", "-c", "stat -c '%u %a' /proc/\(pid) /var/lib/private/cmk-vault /run/credentials/\(Self.service)/tls.key; findmnt -n -o FSTYPE /run/credentials/\(Self.service)")
        let fields = identity.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(fields.count == 4 && fields[0][0] != "0" && fields[1] == [fields[0][0], "700"] && fields[2] == [fields[0][0], "400"] && fields[3] == ["ramfs"],
                "service uid, state directory, TLS key credential, credential file system:\n\(identity.stdout)\(identity.stderr)")
        print("vault unit: uid/mode of the process, /var/lib/private/cmk-vault, the tls.key credential; credentials on:\n\(identity.stdout)")

        // The answer: the tenant's OpenID discovery document, from the same process.
        let discovery = try Self.get(sandbox, ca: ca, "/\(tenant)/v2.0/.well-known/openid-configuration")
        #expect(discovery.curl == 0 && discovery.http == 200, "discovery: curl \(discovery.curl) HTTP \(discovery.http) \(discovery.error)")
        let document = try #require((try? JSONSerialization.jsonObject(with: Data(discovery.body.utf8))) as? [String: Any], "not JSON: \(discovery.body)")
        #expect(document["issuer"] as? String == "\(Self.publicURL)/\(tenant)/v2.0", "\(document)")
        #expect(document["token_endpoint"] as? String == "\(Self.publicURL)/\(tenant)/oauth2/v2.0/token", "\(document)")
        #expect(document["jwks_uri"] as? String == "\(Self.publicURL)/\(tenant)/discovery/v2.0/keys", "\(document)")
        let still = try sandbox.show(Self.service, "MainPID", "NRestarts")
        #expect(still["MainPID"] == started["MainPID"] && still["NRestarts"] == "0", "the second request must reach the same process: \(still)")

        // stop: SIGTERM, STOPPING=1 with STATUS=stopping, exit 0, well within TimeoutStopSec=30s.
        let stopStarted = ContinuousClock.now
        let stop = try sandbox.run("systemctl", "stop", Self.service)
        let stopTook = ContinuousClock.now - stopStarted
        let stopped = try sandbox.show(Self.service, "ActiveState", "Result", "ExecMainCode", "ExecMainStatus", "StatusText")
        #expect(stop.status == 0 && stopped["ActiveState"] == "inactive" && stopped["Result"] == "success"
                && stopped["ExecMainCode"] == "1" && stopped["ExecMainStatus"] == "0", "after stop: \(stopped) \(stop.stderr)\n\(Self.journal(sandbox))")
        #expect(stopped["StatusText"] == "stopping", "the last notification (STOPPING=1, STATUS=stopping): \(stopped)")
        #expect(stopTook < .seconds(15), "stop took \(stopTook)")
        print("vault unit: systemctl stop → \(stopped) in \(stopTook)")

        // The socket stayed; the next connection starts a new process on the same state (same tenant).
        let again = try Self.get(sandbox, ca: ca, "/\(tenant)/v2.0/.well-known/openid-configuration")
        let restarted = try sandbox.show(Self.service, "ActiveState", "MainPID", "StatusText")
        #expect(again.http == 200 && restarted["ActiveState"] == "active" && restarted["MainPID"] != started["MainPID"]
                && restarted["StatusText"] == status, "after stop, a new connection: HTTP \(again.http) \(restarted)")
        let end = try sandbox.run("systemctl", "stop", Self.socket, Self.service)
        #expect(end.status == 0, "stopping both units: \(end.stderr)")
    }

    @Test("A bad configuration exits 78, the unit fails and is not restarted; a waiting client ends the socket after StartLimitBurst activations")
    func badConfiguration() throws {
        let certificates = try TemporaryDirectory(prefix: "vault-ca")
        let (sandbox, ca) = try Self.sandbox(configuration: Self.configuration + "limits: {max-body-byte: 1024}\n", certificates: certificates)
        let listen = try sandbox.run("systemctl", "start", Self.socket)
        #expect(listen.status == 0, "systemctl start \(Self.socket): \(listen.stderr)")

        let start = try sandbox.run("systemctl", "start", Self.service)
        #expect(start.status != 0, "systemctl start \(Self.service) must fail")
        usleep(6_500_000) // longer than RestartSec=5s: a restart would have happened by now
        let failed = try sandbox.show(Self.service, "ActiveState", "Result", "ExecMainStatus", "NRestarts", "StatusText")
        #expect(failed["ActiveState"] == "failed" && failed["Result"] == "exit-code" && failed["ExecMainStatus"] == "78" && failed["NRestarts"] == "0",
                "after a bad configuration: \(failed)")
        #expect(failed["StatusText"]?.hasPrefix("invalid configuration:") == true && failed["StatusText"]?.contains("max-body-byte") == true, "\(failed)")
        let journal = Self.journal(sandbox)
        #expect(journal.contains("Subject: The vault service's configuration is invalid"), "journalctl -x:\n\(journal)")
        print("vault unit: bad configuration → \(failed)")

        // A client waiting on the socket: each activation exits 78, the connection is still
        // queued, so the socket activates the service again until StartLimitBurst=5 in
        // StartLimitIntervalSec=10min; then the socket gives up and closes. Restart= never fires.
        let reset = try sandbox.run("systemctl", "reset-failed", Self.service, Self.socket)
        #expect(reset.status == 0, "reset-failed: \(reset.stderr)")
        let waiting = try Self.get(sandbox, ca: ca, "/any/v2.0/.well-known/openid-configuration")
        #expect(waiting.curl != 0 && waiting.http == 0, "the client must get no answer: curl \(waiting.curl) HTTP \(waiting.http) \(waiting.body)")
        let gaveUp = try sandbox.waitFor(Self.socket, ["ActiveState", "Result"], timeout: .seconds(20)) { $0["ActiveState"] == "failed" }
        let service = try sandbox.show(Self.service, "ActiveState", "ExecMainStatus", "NRestarts")
        #expect(gaveUp["Result"] == "service-start-limit-hit" && service["ExecMainStatus"] == "78" && service["NRestarts"] == "0",
                "socket \(gaveUp), service \(service)")
        let attempts = try sandbox.run("journalctl", "--no-pager", "-o", "cat", "-u", Self.service, "MESSAGE_ID=b2e6f4c1d8a94e3f9a7c5d2e1f0b8a63")
        print("vault unit: a waiting client on a bad configuration → socket \(gaveUp), service \(service), \(attempts.stdout.split(separator: "\n").count) starts logged 'Invalid configuration'")
    }
}
