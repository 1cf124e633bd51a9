import Foundation
import Synchronization

/// A private PostgreSQL server for tests: `initdb` into a temporary directory, run as the
/// unprivileged `postgres` user when the tests run as root (PostgreSQL refuses to run as root),
/// listening on a unix socket in that directory and on a free loopback port. It holds one
/// database owned by one role with a password (SCRAM), the password in a 0600 file.
///
/// Start one per test process with ``shared()``: it is stopped and removed when the process
/// exits. When it cannot start, ``start()`` throws a ``Failure`` carrying initdb's or pg_ctl's
/// output, so the test fails saying why (install Debian's `postgresql`: scripts/install-deps.sh).
public final class PostgresServer: Sendable {
    /// Why the server could not start, with the command's output.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Debian's PostgreSQL 15 binaries.
    public static let binaries = "/usr/lib/postgresql/15/bin"

    /// The temporary directory holding the data directory, the socket and the log.
    public let root: String
    public let dataDirectory: String
    /// The directory of the unix socket `.s.PGSQL.<port>`.
    public var socketDirectory: String { root }
    public let port: Int
    public let database = "cmk"
    public let user = "cmk_syncer"
    /// A file (mode 0600, owned by the test process's user) holding the role's password.
    public let passwordFile: String
    let runAs: String?
    /// Whether the server runs with `ssl=on` and accepts TCP connections only over TLS (``TLS``).
    public let tls: Bool

    /// A server certificate and its key (PEM) for a TLS-enabled server. Tests make them with a
    /// throw-away CA at run time; they are copied into the data directory (mode 0600, the server's user).
    public struct TLS: Sendable {
        public let certificatePEM: String
        public let keyPEM: String

        public init(certificatePEM: String, keyPEM: String) {
            self.certificatePEM = certificatePEM
            self.keyPEM = keyPEM
        }
    }

    private static let sharedServer = Mutex<Result<PostgresServer, Failure>?>(nil)

    /// The process's server, started on first use and stopped at exit.
    public static func shared() throws -> PostgresServer {
        try sharedServer.withLock { shared in
            if shared == nil {
                do {
                    let server = try PostgresServer.start()
                    shared = .success(server)
                    atexit { PostgresServer.stopShared() }
                } catch let failure as Failure {
                    shared = .failure(failure)
                } catch {
                    shared = .failure(Failure(description: "\(error)"))
                }
            }
            return try shared!.get()
        }
    }

    private static func stopShared() {
        if case .success(let server) = sharedServer.withLock({ $0 }) { server.stop() }
    }

    init(root: String, port: Int, passwordFile: String, runAs: String?, tls: Bool) {
        self.root = root
        dataDirectory = root + "/data"
        self.port = port
        self.passwordFile = passwordFile
        self.runAs = runAs
        self.tls = tls
    }

    /// Creates, starts and provisions a new server. With `tls`, the server has `ssl=on` with that
    /// certificate, and `pg_hba.conf` admits TCP connections only over TLS (`hostssl`); the unix
    /// socket stays plain.
    public static func start(tls: TLS? = nil) throws -> PostgresServer {
        for tool in ["initdb", "pg_ctl", "psql"] where !FileManager.default.isExecutableFile(atPath: binaries + "/" + tool) {
            throw Failure(description: "\(binaries)/\(tool) is missing: install Debian's postgresql package (scripts/install-deps.sh)")
        }
        let runAs: String? = geteuid() == 0 ? "postgres" : nil
        if let runAs, getpwnam(runAs) == nil {
            throw Failure(description: "the user '\(runAs)' does not exist: install Debian's postgresql package (scripts/install-deps.sh), which creates it")
        }
        var template = Array("/tmp/cmk-postgres-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw Failure(description: "mkdtemp failed: errno \(errno)") }
        let root = String(cString: made)
        let secrets = root + "-secrets"
        try FileManager.default.createDirectory(atPath: secrets, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        if let runAs, let entry = getpwnam(runAs) {
            guard chown(root, entry.pointee.pw_uid, entry.pointee.pw_gid) == 0 else {
                throw Failure(description: "cannot hand \(root) to the user \(runAs): errno \(errno)")
            }
        }
        chmod(root, 0o700)
        let password = (0..<24).map { _ in String("abcdefghijkmnpqrstuvwxyz23456789".randomElement()!) }.joined()
        let passwordFile = secrets + "/postgres.password"
        guard FileManager.default.createFile(atPath: passwordFile, contents: Data((password + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw Failure(description: "cannot write \(passwordFile)")
        }
        let port = try LoopbackPort.free()
        let server = PostgresServer(root: root, port: port, passwordFile: passwordFile, runAs: runAs, tls: tls != nil)
        do {
            try server.run("initdb", ["-D", server.dataDirectory, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "-N"])
            let hba = """
                local all postgres trust
                local all all scram-sha-256
                \(tls == nil ? "host" : "hostssl") all all 127.0.0.1/32 scram-sha-256

                """
            try server.run("sh", ["-c", "cat > \"$1\"", "sh", server.dataDirectory + "/pg_hba.conf"], input: hba, absolute: "/bin/sh")
            if let tls {
                // server.crt and server.key are ssl_cert_file's and ssl_key_file's defaults.
                for (name, pem) in [("server.crt", tls.certificatePEM), ("server.key", tls.keyPEM)] {
                    try server.run("sh", ["-c", "umask 077 && cat > \"$1\"", "sh", server.dataDirectory + "/" + name], input: pem, absolute: "/bin/sh")
                }
            }
            try server.startServer()
            try server.psql("CREATE ROLE \(server.user) LOGIN PASSWORD '\(password)'")
            try server.psql("CREATE DATABASE \(server.database) OWNER \(server.user)")
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    /// Starts the server process (after ``stopServer()``, or at ``start()``).
    public func startServer() throws {
        let options = "-k \(root) -p \(port) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100" + (tls ? " -c ssl=on" : "")
        try run("pg_ctl", ["-D", dataDirectory, "-l", root + "/server.log", "-o", options, "-w", "-t", "60", "start"],
                logOnFailure: root + "/server.log")
    }

    /// Stops the server process (`fast`: open connections are dropped), keeping its data.
    public func stopServer(mode: String = "fast") throws {
        try run("pg_ctl", ["-D", dataDirectory, "-m", mode, "-w", "-t", "60", "stop"])
    }

    /// Stops the server if it runs and removes its directories.
    public func stop() {
        if FileManager.default.fileExists(atPath: dataDirectory + "/postmaster.pid") {
            try? stopServer(mode: "immediate")
        }
        try? FileManager.default.removeItem(atPath: root)
        try? FileManager.default.removeItem(atPath: root + "-secrets")
    }

    /// Runs SQL as the superuser over the unix socket; returns psql's unaligned output.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        try run("psql", ["-h", root, "-p", String(port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
    }

    /// Runs one of the server's tools as the server's user; throws with its output when it fails.
    ///
    /// Spawned with `posix_spawn` and reaped with `waitpid`, not Foundation's `Process`: on Linux
    /// `Process` learns of the exit through a socket the child inherits, and the server that
    /// `pg_ctl start` leaves running would hold it open, so `waitUntilExit()` would never return.
    @discardableResult
    func run(_ tool: String, _ arguments: [String], input: String? = nil, absolute: String? = nil, logOnFailure: String? = nil) throws -> String {
        let executable = absolute ?? PostgresServer.binaries + "/" + tool
        // From `/`: the server's user may not enter the test's working directory.
        let argv = ["/usr/bin/env", "-C", "/"] + (runAs.map { ["/usr/sbin/runuser", "-u", $0, "--", executable] } ?? [executable]) + arguments
        let scratch = root + "-secrets/tool-\(UInt32.random(in: .min ... .max))"
        let outputPath = scratch + ".out", inputPath = scratch + ".in"
        guard FileManager.default.createFile(atPath: inputPath, contents: Data((input ?? "").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw Failure(description: "cannot create \(inputPath)")
        }
        defer {
            try? FileManager.default.removeItem(atPath: outputPath)
            try? FileManager.default.removeItem(atPath: inputPath)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pid: pid_t = 0
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ)
        guard spawned == 0 else { throw Failure(description: "cannot run \(argv[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        let text = String(decoding: FileManager.default.contents(atPath: outputPath) ?? Data(), as: UTF8.self)
        let exited = status & 0x7f == 0
        let code = (status >> 8) & 0xff
        guard exited, code == 0 else {
            var message = "\(tool) \(arguments.joined(separator: " ")) \(exited ? "exited with \(code)" : "was killed by signal \(status & 0x7f)"):\n\(text)"
            if let logOnFailure, let log = try? String(contentsOfFile: logOnFailure, encoding: .utf8) {
                message += "\nserver log:\n\(log.suffix(4000))"
            }
            throw Failure(description: message)
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
