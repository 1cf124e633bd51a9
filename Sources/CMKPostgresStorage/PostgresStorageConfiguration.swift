import CMKCore
import Foundation

/// How a daemon reaches its PostgreSQL database (`accounts[].postgres`, docs/storage.md).
///
/// The password is never part of the configuration: it is read from a file (a systemd
/// credential's file in `$CREDENTIALS_DIRECTORY`, or a 0600 file) when the pool opens, and never logged.
public struct PostgresStorageConfiguration: Sendable, Hashable {
    /// Where the server listens.
    public enum Endpoint: Sendable, Hashable {
        /// A TCP host name or address and port.
        case tcp(host: String, port: Int)
        /// A unix socket directory (the server's `unix_socket_directories`) and the server's port,
        /// which names the socket file `<directory>/.s.PGSQL.<port>`.
        case unixSocket(directory: String, port: Int)
    }

    /// TLS towards the server (`tls.mode`). A unix socket never uses TLS.
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        /// Plain TCP (only for loopback or a private network you trust).
        case disable
        /// TLS required, the server's certificate not checked (encryption without authentication).
        case require
        /// TLS required, the certificate checked against `ca-file` (or the system's roots) and the host name.
        case verifyFull = "verify-full"
    }

    public var endpoint: Endpoint
    public var database: String
    public var user: String
    /// A file holding the password (one line; a trailing newline is ignored); nil: no password
    /// (peer or trust authentication on a unix socket).
    public var passwordFile: String?
    public var tls: TLSMode
    /// PEM file of the certificate authorities trusted for `verify-full`; nil: the system's roots.
    public var caFile: String?
    /// The most connections the daemon opens to the server (one pool per daemon, shared by its accounts).
    public var poolSize: Int
    /// The server cancels a statement running longer than this (`statement_timeout`).
    public var statementTimeout: Duration
    /// How long opening a connection may take.
    public var connectTimeout: Duration

    public init(endpoint: Endpoint, database: String, user: String, passwordFile: String? = nil, tls: TLSMode = .disable,
                caFile: String? = nil, poolSize: Int = 10, statementTimeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(10)) {
        self.endpoint = endpoint
        self.database = database
        self.user = user
        self.passwordFile = passwordFile
        self.tls = tls
        self.caFile = caFile
        self.poolSize = poolSize
        self.statementTimeout = statementTimeout
        self.connectTimeout = connectTimeout
    }

    /// Where the server is, for messages (never the password).
    public var serverDescription: String {
        switch endpoint {
        case .tcp(let host, let port): return "postgresql://\(user)@\(host):\(port)/\(database)"
        case .unixSocket(let directory, let port): return "postgresql://\(user)@[\(directory)/.s.PGSQL.\(port)]/\(database)"
        }
    }

    /// Reads the password file: a regular file only its owner may read (mode 0600 or 0400, as
    /// `LoadCredential=` provides it). Errors name the file, never its contents.
    func readPassword() throws -> String? {
        guard let path = passwordFile else { return nil }
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw StorageError(.misconfigured, "PostgreSQL password file \(path) cannot be read: \(String(cString: strerror(errno)))")
        }
        if let problem = FileAccessRule.credentialFile.problem(with: info, path: path, what: "PostgreSQL password file") {
            throw StorageError(problem.kind == .mode ? .permissions : .misconfigured, problem.description)
        }
        guard var data = FileManager.default.contents(atPath: path) else {
            throw StorageError(.misconfigured, "PostgreSQL password file \(path) cannot be read")
        }
        defer { data.resetBytes(in: 0..<data.count) }
        guard var text = String(data: data, encoding: .utf8) else {
            throw StorageError(.misconfigured, "PostgreSQL password file \(path) is not UTF-8 text")
        }
        while let last = text.last, last == "\n" || last == "\r" { text.removeLast() }
        guard !text.isEmpty else { throw StorageError(.misconfigured, "PostgreSQL password file \(path) is empty") }
        return text
    }
}
