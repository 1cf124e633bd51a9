import CMKKeyVaultAPI
import Crypto
import Foundation

/// A throwaway certificate authority made with the `openssl` command line in a private temporary
/// directory: `ca.pem` (the trust anchor to give clients), a server certificate for `127.0.0.1`,
/// `::1` and `localhost`, and a client certificate for certificate client assertions. The CA's
/// private key is deleted once the certificates are signed; call `remove()` when done.
public struct TestCertificateAuthority: Sendable {
    /// The certificate and key the server presents.
    public struct ServerFiles: Sendable {
        public var certificatePath: String
        public var privateKeyPath: String
        public init(certificatePath: String, privateKeyPath: String) {
            self.certificatePath = certificatePath
            self.privateKeyPath = privateKeyPath
        }
    }

    /// A client certificate registered on the emulated application (for `client_assertion`).
    public struct ClientCertificate: Sendable {
        public var certificatePath: String
        public var privateKeyPath: String
        /// The certificate's public key as PEM (`-----BEGIN PUBLIC KEY-----`).
        public var publicKeyPEM: String
        /// `x5t`: base64url of the SHA-1 of the certificate's DER.
        public var thumbprintSHA1: String
        /// `x5t#S256`: base64url of the SHA-256 of the certificate's DER.
        public var thumbprintSHA256: String
    }

    public let directory: String
    /// The CA certificate (PEM) clients must trust.
    public let caCertificatePath: String
    public let server: ServerFiles
    public let client: ClientCertificate

    /// Creates the CA and its certificates; fails with what to install when `openssl` is missing.
    public static func make(openssl: String = "/usr/bin/openssl") throws -> TestCertificateAuthority {
        guard FileManager.default.isExecutableFile(atPath: openssl) else {
            throw TestServerError("\(openssl) is missing: install the Debian package 'openssl' (scripts/install-deps.sh does)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cmk-test-ca-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        func path(_ name: String) -> String { "\(directory)/\(name)" }
        do {
            try run(openssl, [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2", "-keyout", path("ca.key"), "-out", path("ca.pem"),
                "-subj", "/CN=cmk-syncer test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ])
            try issue(openssl, name: "server", subject: "/CN=127.0.0.1", in: directory, extensions: """
                basicConstraints=critical,CA:FALSE
                keyUsage=critical,digitalSignature,keyEncipherment
                extendedKeyUsage=serverAuth
                subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
                subjectKeyIdentifier=hash
                authorityKeyIdentifier=keyid,issuer
                """)
            try issue(openssl, name: "client", subject: "/CN=cmk-syncer test client", in: directory, extensions: """
                basicConstraints=critical,CA:FALSE
                keyUsage=critical,digitalSignature
                extendedKeyUsage=clientAuth
                subjectKeyIdentifier=hash
                authorityKeyIdentifier=keyid,issuer
                """)
            try FileManager.default.removeItem(atPath: path("ca.key"))
            let publicKey = try run(openssl, ["x509", "-in", path("client.pem"), "-pubkey", "-noout"])
            let der = try run(openssl, ["x509", "-in", path("client.pem"), "-outform", "DER"])
            let client = ClientCertificate(
                certificatePath: path("client.pem"), privateKeyPath: path("client.key"), publicKeyPEM: String(decoding: publicKey, as: UTF8.self),
                thumbprintSHA1: KeyVaultBase64URL.encode(Data(Insecure.SHA1.hash(data: der))), thumbprintSHA256: KeyVaultBase64URL.encode(Data(SHA256.hash(data: der))))
            return TestCertificateAuthority(
                directory: directory, caCertificatePath: path("ca.pem"),
                server: ServerFiles(certificatePath: path("server.pem"), privateKeyPath: path("server.key")), client: client)
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Deletes the directory with every certificate and key.
    public func remove() { try? FileManager.default.removeItem(atPath: directory) }

    private static func issue(_ openssl: String, name: String, subject: String, in directory: String, extensions: String) throws {
        let extensionsPath = "\(directory)/\(name).ext"
        try Data(extensions.utf8).write(to: URL(fileURLWithPath: extensionsPath))
        try run(openssl, ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).csr", "-subj", subject])
        try run(openssl, [
            "x509", "-req", "-sha256", "-days", "2", "-in", "\(directory)/\(name).csr", "-CA", "\(directory)/ca.pem", "-CAkey", "\(directory)/ca.key",
            "-set_serial", String(UInt32.random(in: 1...UInt32.max)), "-out", "\(directory)/\(name).pem", "-extfile", extensionsPath,
        ])
    }

    @discardableResult
    private static func run(_ executable: String, _ arguments: [String]) throws -> Data {
        let result = try ProcessRunner.run(executable, arguments)
        guard result.status == 0 else {
            throw TestServerError("openssl \(arguments.first ?? "") failed (exit \(result.status)): \(result.errors.prefix(400))")
        }
        return result.output
    }
}
