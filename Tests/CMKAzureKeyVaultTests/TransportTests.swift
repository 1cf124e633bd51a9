@testable import CMKAzureKeyVault
import CMKTesting
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// The production transport against a real TLS server on loopback (`openssl s_server`, installed
/// by scripts/install-deps.sh): the extra trust root is honoured, an untrusted certificate is a
/// TLS error, a closed port a connection error.
@Suite("async-http-client transport over loopback TLS", .serialized)
struct TransportTests {
    /// A test CA and a server certificate for 127.0.0.1 signed by it.
    static func makeCertificates() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("akv-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try TestOpenSSL.run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=cmk-test-ca",
                     "-days", "1", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], in: directory)
        try TestOpenSSL.run(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"], in: directory)
        try "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            .write(toFile: directory + "/server.ext", atomically: true, encoding: .utf8)
        try TestOpenSSL.run(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
                     "-days", "1", "-extfile", "server.ext"], in: directory)
        return directory
    }

    /// Starts `openssl s_server -www` on a free loopback port; returns the process and the port
    /// once the port accepts connections.
    static func startServer(_ directory: String) throws -> (Process, Int) {
        for _ in 0..<10 {
            let port = Int.random(in: 20_000...60_000)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", "server.pem", "-key", "server.key", "-www", "-quiet"]
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning, Date() < deadline {
                if canConnect(port) { return (process, port) }
                usleep(50_000)
            }
            stop(process)
        }
        throw RecordingError("openssl s_server did not start on a loopback port after 10 tries")
    }

    /// Ends a server this test started, by its pid (`s_server` ignores SIGTERM while it waits).
    static func stop(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    @Test("the CA file is trusted, the system roots alone are not, a closed port is a connection error")
    func loopbackTLS() async throws {
        let directory = try Self.makeCertificates()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (server, port) = try Self.startServer(directory)
        defer { Self.stop(server) }
        let url = URL(string: "https://127.0.0.1:\(port)/")!

        let response = try await AsyncHTTPClientTransport.withTransport(caFile: directory + "/ca.pem", timeout: .seconds(10)) { transport in
            try await transport.send(AzureHTTPRequest(method: "GET", url: url))
        }
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self).contains("s_server"))

        do {
            _ = try await AsyncHTTPClientTransport.withTransport(caFile: nil, timeout: .seconds(10)) { transport in
                try await transport.send(AzureHTTPRequest(method: "GET", url: url))
            }
            Issue.record("a certificate from an unknown CA was accepted")
        } catch let error as AzureTransportError {
            #expect(error.kind == .tls, "\(error)")
        }

        Self.stop(server)
        do {
            _ = try await AsyncHTTPClientTransport.withTransport(caFile: directory + "/ca.pem", timeout: .seconds(5)) { transport in
                try await transport.send(AzureHTTPRequest(method: "GET", url: url))
            }
            Issue.record("a closed port answered")
        } catch let error as AzureTransportError {
            #expect(error.kind == .connection || error.kind == .timeout, "\(error)")
        }

        #expect(throws: AzureTransportError.self) { _ = try AsyncHTTPClientTransport.shared(caFile: directory + "/missing.pem", timeout: .seconds(1)) }
    }
}
