import Foundation
import Glibc

/// The physical limits every figure is compared with: `openssl speed`, run in the same session.
///
/// openssl divides by user CPU time (its default, no `-elapsed`), and so do the envelope and
/// RSA figures here (process CPU time), so a busy machine slows both sides alike.
enum OpenSSLAnchor {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `openssl version`.
    static func version() -> String {
        (try? run(["version"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? "unknown"
    }

    /// AES-256-GCM bytes per second for one block size (`-evp aes-256-gcm -bytes N`).
    static func aesGCM(bytes: Int, seconds: Int, decrypt: Bool) throws -> Double {
        var arguments = ["speed", "-mr", "-seconds", "\(seconds)", "-bytes", "\(bytes)"]
        if decrypt { arguments.append("-decrypt") }
        arguments += ["-evp", "aes-256-gcm"]
        let output = try run(arguments)
        // +F:<n>:AES-256-GCM:<bytes/s for each block size>
        for line in output.split(separator: "\n") where line.hasPrefix("+F:") {
            let fields = line.split(separator: ":")
            if fields.count >= 4, let rate = Double(fields[3]) { return rate }
        }
        throw Failure(description: "openssl speed -evp aes-256-gcm printed no +F line:\n\(output)")
    }

    /// RSA-2048 private and public operations per second (`openssl speed rsa2048`).
    static func rsa2048(seconds: Int) throws -> (privatePerSecond: Double, publicPerSecond: Double) {
        let output = try run(["speed", "-mr", "-seconds", "\(seconds)", "rsa2048"])
        // +F2:<n>:2048:<private ops/s>:<public ops/s>
        for line in output.split(separator: "\n") where line.hasPrefix("+F2:") {
            let fields = line.split(separator: ":")
            if fields.count >= 5, let sign = Double(fields[3]), let verify = Double(fields[4]) { return (sign, verify) }
        }
        throw Failure(description: "openssl speed rsa2048 printed no +F2 line:\n\(output)")
    }

    /// ECDSA P-256 signatures and verifications per second (`openssl speed ecdsap256`).
    static func ecdsaP256(seconds: Int) throws -> (signPerSecond: Double, verifyPerSecond: Double) {
        // +F4:<n>:256:<sign/s>:<verify/s>
        try signVerify(["speed", "-mr", "-seconds", "\(seconds)", "ecdsap256"], line: "+F4:", minimumFields: 5)
    }

    /// Ed25519 signatures and verifications per second (`openssl speed ed25519`).
    static func ed25519(seconds: Int) throws -> (signPerSecond: Double, verifyPerSecond: Double) {
        // +F6:<n>:253:Ed25519:<sign/s>:<verify/s>
        try signVerify(["speed", "-mr", "-seconds", "\(seconds)", "ed25519"], line: "+F6:", minimumFields: 6)
    }

    /// The sign and verify rates of a signature algorithm: the last two fields of its `line`
    /// (openssl has put the algorithm's name between the count and the rates in some versions).
    private static func signVerify(_ arguments: [String], line prefix: String, minimumFields: Int) throws -> (signPerSecond: Double, verifyPerSecond: Double) {
        let output = try run(arguments)
        for line in output.split(separator: "\n") where line.hasPrefix(prefix) {
            let fields = line.split(separator: ":")
            if fields.count >= minimumFields, let sign = Double(fields[fields.count - 2]), let verify = Double(fields[fields.count - 1]),
               sign > 0, verify > 0 { return (sign, verify) }
        }
        throw Failure(description: "openssl \(arguments.joined(separator: " ")) printed no \(prefix) line with sign and verify rates:\n\(output)")
    }

    /// Runs `openssl` with `arguments` and returns its standard output. Fails (saying why) if
    /// openssl is missing or exits non-zero: an anchor is never silently skipped.
    static func run(_ arguments: [String]) throws -> String {
        try command(["openssl"] + arguments, hint: "install it: make deps")
    }

    /// Runs a program found on `PATH` and returns its standard output.
    ///
    /// Spawned with an empty signal mask and default dispositions: `openssl speed -seconds` stops
    /// on `SIGALRM`, which the threads of this process (and so a child started by `Process`) block.
    static func command(_ arguments: [String], hint: String) throws -> String {
        var pipe: [Int32] = [0, 0]
        guard Glibc.pipe(&pipe) == 0 else { throw Failure(description: "pipe() failed: errno \(errno)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipe[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addclose(&actions, pipe[0])
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, arguments[0], &actions, &attributes, &argv, environ)
        close(pipe[1])
        guard spawned == 0 else {
            close(pipe[0])
            throw Failure(description: "cannot start \(arguments[0]) (\(hint)): \(String(cString: strerror(spawned)))")
        }
        var output = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(pipe[0], &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            output += buffer[..<count]
        }
        close(pipe[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        guard status == 0 else {
            throw Failure(description: "\(arguments.joined(separator: " ")) failed (wait status \(status))")
        }
        return String(decoding: output, as: UTF8.self)
    }
}
