import CMKCore
import CMKEnvelope
import Foundation
import Testing

/// Core dumps of the real daemon hold neither the vault's master key nor the RSA private keys
/// (issue 24, defect 13). `gcore` (Debian package gdb, installed by scripts/install-deps.sh) runs
/// as root here, so the daemon's `PR_SET_DUMPABLE` 0 does not stop it: what keeps the keys out
/// is `MADV_DONTDUMP` on the secret memory, which gcore honours by default. `gcore -a` dumps the
/// excluded mappings too and is the positive control: it must find every key, which proves the
/// daemon held them when it was dumped and that the search would see them.
@Suite("Core dumps leave key material out", .serialized)
struct CoreDumpTests {
    static let gcore = "/usr/bin/gcore"

    /// The secrets of an embedded setup, recovered from its files the way an attacker with the
    /// master key would: the master key's bytes and, per key version, the primes and the private
    /// exponents of its RSA key, each as OpenSSL holds them (little-endian limbs) and in DER's
    /// big-endian order.
    struct Secrets {
        var named: [(name: String, bytes: [UInt8])] = []

        init(state: String) throws {
            let text = try #require(FileManager.default.contents(atPath: state + "/master.key"))
            let trimmed = String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let master = try #require(Data(base64Encoded: trimmed), "master.key is not base64")
            named.append(("master key", Array(master)))
            named.append(("master key (base64 text)", Array(trimmed.utf8)))
            let key = SecretBytes(copying: master)
            let keys = state + "/vault/keys"
            for file in try FileManager.default.contentsOfDirectory(atPath: keys) where file.hasSuffix(".json") {
                let document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: keys + "/" + file))) as? [String: Any])
                let name = try #require(document["name"] as? String)
                for version in try #require(document["versions"] as? [[String: Any]]) {
                    let id = try #require(version["id"] as? String)
                    let sealed = try #require(version["sealedPrivateKey"] as? [String: String])
                    let box = Libcrypto.SealedBox(nonce: try #require(Data(base64Encoded: sealed["nonce"] ?? "")),
                                                  ciphertext: try #require(Data(base64Encoded: sealed["ciphertext"] ?? "")),
                                                  tag: try #require(Data(base64Encoded: sealed["tag"] ?? "")))
                    let aad = Data("cmk-syncer/local-vault/v1\u{0}key=\(name)\u{0}version=\(id)".utf8)
                    let der = try #require(Libcrypto.openAES256GCM(box, key: key, authenticating: aad), "cannot unseal \(name)/\(id)")
                    let integers = try der.withUnsafeBytes { try Self.pkcs1Integers(Array($0)) }
                    // RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dp, dq, qinv }
                    for (index, part) in [(3, "d"), (4, "p"), (5, "q"), (6, "dp"), (7, "dq")] {
                        let bigEndian = Array(integers[index].drop { $0 == 0 })
                        named.append(("\(id.prefix(8)) \(part)", bigEndian))
                        named.append(("\(id.prefix(8)) \(part) (little-endian)", bigEndian.reversed()))
                    }
                }
            }
        }

        /// The INTEGERs of a DER SEQUENCE (short and long lengths; no other types).
        static func pkcs1Integers(_ der: [UInt8]) throws -> [[UInt8]] {
            var index = 0
            func length() throws -> Int {
                let first = Int(der[index]); index += 1
                guard first & 0x80 != 0 else { return first }
                var value = 0
                for _ in 0..<(first & 0x7F) { value = value << 8 | Int(der[index]); index += 1 }
                return value
            }
            try #require(der.first == 0x30)
            index = 1
            _ = try length()
            var integers: [[UInt8]] = []
            while index < der.count {
                try #require(der[index] == 0x02, "not an INTEGER at \(index)")
                index += 1
                let count = try length()
                integers.append(Array(der[index..<index + count]))
                index += count
            }
            try #require(integers.count == 9, "not a two-prime PKCS#1 RSAPrivateKey")
            return integers
        }

        /// The secrets found in `core` (a 32-byte window from the start of each is enough).
        func found(in core: Data) -> [String] {
            named.filter { core.range(of: Data($0.bytes.prefix(32))) != nil }.map(\.name)
        }
    }

    /// A running daemon that has unsealed its key: its first pass creates the keyrings and checks
    /// the new key version by unwrapping a probe in the vault.
    static func runningDaemon(_ setup: EmbeddedSetup) async throws -> DaemonProcess {
        let daemon = try DaemonProcess(arguments: ["run", "--config", setup.configPath], logPath: setup.root + "/daemon.log")
        try await eventually("the daemon's first pass") { daemon.log.contains("Sync pass finished") }
        return daemon
    }

    static func dump(_ pid: Int32, to prefix: String, all: Bool) throws -> Data {
        guard FileManager.default.isExecutableFile(atPath: gcore) else {
            Issue.record("\(gcore) is missing: run scripts/install-deps.sh (Debian package gdb)")
            throw Timeout(what: "gcore")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: gcore)
        process.arguments = (all ? ["-a"] : []) + ["-o", prefix, "\(pid)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        let path = "\(prefix).\(pid)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(process.terminationStatus == 0, "gcore exited \(process.terminationStatus)")
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    @Test("gcore of the running daemon (as root) holds no master key and no RSA prime or private exponent")
    func gcoreLeavesKeysOut() async throws {
        let setup = try EmbeddedSetup()
        let daemon = try await Self.runningDaemon(setup)
        let secrets = try Secrets(state: setup.state)
        #expect(secrets.named.count == 2 + 10)

        let everything = try Self.dump(daemon.pid, to: setup.root + "/all", all: true)
        let control = Set(secrets.found(in: everything))
        // What the daemon holds: the master key and the parsed RSA key (OpenSSL's little-endian
        // limbs). The file's base64 text and the DER form are wiped after use and in no dump.
        let held = Set(secrets.named.map(\.name).filter { $0 == "master key" || $0.hasSuffix("(little-endian)") })
        #expect(held.count == 6)
        #expect(control.isSuperset(of: held), "gcore -a should find every key the daemon holds; found \(control.sorted())")

        let core = try Self.dump(daemon.pid, to: setup.root + "/core", all: false)
        #expect(core.count > 1_000_000, "the dump is \(core.count) bytes")
        #expect(secrets.found(in: core) == [], "key material in the core dump")
        daemon.signal(SIGTERM)
        #expect(await daemon.wait() == 0)
    }

    /// Runs `command` as user nobody (`setpriv`, util-linux); returns its exit status.
    static func asNobody(_ command: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid", "65534", "--regid", "65534", "--clear-groups"] + command
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    @Test("the daemon is undumpable: a process of its own user can neither gcore it nor open its /proc/PID/mem")
    func undumpableForItsOwnUser() async throws {
        try #require(getuid() == 0, "this test runs the daemon as user nobody and needs root to do so")
        let setup = try EmbeddedSetup()
        #expect(chown(setup.root, 65534, 65534) == 0)
        let daemon = try DaemonProcess(arguments: ["run", "--config", setup.configPath], logPath: setup.root + "/daemon.log",
                                       launcher: ["/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"])
        try await eventually("the daemon's first pass") { daemon.log.contains("Sync pass finished") }
        let pid = daemon.pid  // setpriv execs the daemon

        // Positive control: the same user may gcore a process of its own that is dumpable.
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        sleeper.arguments = ["--reuid", "65534", "--regid", "65534", "--clear-groups", "/bin/sleep", "60"]
        try sleeper.run()
        defer { sleeper.terminate(); sleeper.waitUntilExit() }
        try await Task.sleep(for: .milliseconds(300))
        #expect(try Self.asNobody([Self.gcore, "-o", setup.root + "/sleep", "\(sleeper.processIdentifier)"]) == 0)

        #expect(try Self.asNobody([Self.gcore, "-o", setup.root + "/daemon", "\(pid)"]) != 0, "gcore by the daemon's own user should fail")
        #expect(!FileManager.default.fileExists(atPath: setup.root + "/daemon.\(pid)"))
        // Undumpable processes' /proc files (mem, environ, maps, …) belong to root.
        var info = stat()
        #expect(stat("/proc/\(pid)/mem", &info) == 0 && info.st_uid == 0)
        kill(pid, SIGTERM)
        #expect(await daemon.wait() == 0)
    }
}
