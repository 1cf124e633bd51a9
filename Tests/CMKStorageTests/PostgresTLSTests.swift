import CMKCore
@testable import CMKPostgresStorage
import CMKTesting
import Foundation
import Testing

/// `postgres.tls` against a real TLS-enabled PostgreSQL 15 (`ssl=on`, TCP admitted only by
/// `hostssl`): a throw-away CA and a server certificate for `localhost` are made with the
/// openssl CLI in a temporary directory for this run (no key material in the repository).
@Suite("PostgreSQL driver over TLS", .serialized)
struct PostgresTLSTests {
    /// A CA (`name`.crt, `name`.key) in `directory`.
    static func makeCA(_ name: String, in directory: String) throws {
        try TestOpenSSL.run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                     "-subj", "/CN=cmk-syncer test \(name)", "-keyout", "\(name).key", "-out", "\(name).crt",
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], in: directory)
    }

    @Test("verify-full with the right CA and host works; a wrong CA, a host not in the certificate and disable against hostssl are refused naming the cause; require works without a CA")
    func tlsModes() async throws {
        let root = try TemporaryDirectory()
        let dir = root.path
        try Self.makeCA("ca", in: dir)
        try Self.makeCA("other-ca", in: dir)
        try "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            .write(toFile: dir + "/server.ext", atomically: true, encoding: .utf8)
        try TestOpenSSL.run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost",
                          "-keyout", "server.key", "-out", "server.csr"], in: dir)
        try TestOpenSSL.run(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
                          "-extfile", "server.ext", "-out", "server.crt"], in: dir)
        let server = try PostgresServer.start(tls: .init(certificatePEM: try String(contentsOfFile: dir + "/server.crt", encoding: .utf8),
                                                          keyPEM: try String(contentsOfFile: dir + "/server.key", encoding: .utf8)))
        defer { server.stop() }

        func configuration(host: String, _ tls: PostgresStorageConfiguration.TLSMode, ca: String?) -> PostgresStorageConfiguration {
            PostgresStorageConfiguration(endpoint: .tcp(host: host, port: server.port), database: server.database, user: server.user,
                                         passwordFile: server.passwordFile, tls: tls, caFile: ca.map { dir + "/" + $0 }, poolSize: 2,
                                         connectTimeout: .seconds(5))
        }
        /// Reads a keyring through a new store; nil, or the error it failed with.
        func attempt(_ configuration: PostgresStorageConfiguration) async throws -> (StorageError?, Bool?) {
            let store = try PostgresStore(configuration)
            defer { Task { await store.shutdown() } }
            let error = await storageError { _ = try await PostgresStorageDriver(store: store, account: "tls").readKeyring() }
            guard error == nil else { return (error, nil) }
            // The pool's connection really runs TLS.
            let ssl = try await store.withConnection("ask pg_stat_ssl") { connection in
                var ssl = false
                for try await value in try await connection.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", logger: store.logger)
                    .decode(Bool.self) { ssl = value }
                return ssl
            }
            await store.shutdown()
            return (nil, ssl)
        }

        let verified = try await attempt(configuration(host: "localhost", .verifyFull, ca: "ca.crt"))
        #expect(verified.0 == nil && verified.1 == true, "verify-full, right CA and host: \(String(describing: verified))")

        let wrongCA = try await attempt(configuration(host: "localhost", .verifyFull, ca: "other-ca.crt")).0
        print("postgres TLS, wrong CA: \(String(describing: wrongCA))")
        #expect(wrongCA?.code == .misconfigured && wrongCA?.reason.contains("TLS with postgresql://") == true
            && wrongCA?.reason.uppercased().contains("CERTIFICATE_VERIFY_FAILED") == true, "\(String(describing: wrongCA))")

        // The certificate names localhost only; 127.0.0.1 is the same server under another name.
        let wrongHost = try await attempt(configuration(host: "127.0.0.1", .verifyFull, ca: "ca.crt")).0
        print("postgres TLS, host not in the certificate: \(String(describing: wrongHost))")
        #expect(wrongHost?.code == .misconfigured && wrongHost?.reason.contains("TLS with postgresql://cmk_syncer@127.0.0.1") == true,
                "\(String(describing: wrongHost))")

        let required = try await attempt(configuration(host: "127.0.0.1", .require, ca: nil))
        #expect(required.0 == nil && required.1 == true, "require without a CA: \(String(describing: required))")

        let plain = try await attempt(configuration(host: "127.0.0.1", .disable, ca: nil)).0
        print("postgres TLS, disable against hostssl: \(String(describing: plain))")
        #expect(plain?.code == .misconfigured && plain?.reason.contains("only over TLS") == true && plain?.reason.contains("SQLSTATE 28000") == true,
                "\(String(describing: plain))")
    }
}
