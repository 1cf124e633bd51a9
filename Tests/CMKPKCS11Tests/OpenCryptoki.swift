import CMKCore
import CMKPKCS11
import CMKTesting
import Foundation
import Testing

/// openCryptoki's soft token (Debian `opencryptoki` 3.8) for the tests. Its module talks to the
/// `pkcsslotd` daemon, and both use fixed host paths (/etc/opencryptoki, /var/lib/opencryptoki,
/// /run/pkcsslotd.socket, /var/lock/opencryptoki, /var/log/opencryptoki) and a System V shared
/// memory segment with a fixed key. A test never touches the host's: it re-runs itself (the test
/// binary, filtered to that one test) in private mount, IPC and PID namespaces
/// (`unshare --mount --ipc --pid --fork --mount-proc`) where those directories are tmpfs, a
/// pkcsslotd of its own runs and the soft token is initialised (`pkcsconf -I`, `-P`, `-u`). The
/// namespace's processes (pkcsslotd included) end with it. docs/providers/pkcs11.md, "openCryptoki".
enum OpenCryptoki {
    static let module = "/usr/lib/x86_64-linux-gnu/opencryptoki/libopencryptoki.so.0"
    static let label = "cmk-ock"
    static let slot = "3"
    /// Set in the namespace: the test body runs there; outside, the test starts the namespace.
    static let insideVariable = "CMK_OPENCRYPTOKI_NAMESPACE"
    static var inside: Bool { ProcessInfo.processInfo.environment[insideVariable] != nil }
    /// The PIN file the namespace's setup wrote (0600).
    static var pinFile: String { (ProcessInfo.processInfo.environment[insideVariable] ?? "/nonexistent") + "/token.pin" }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The setup run as the namespace's first process: tmpfs over openCryptoki's host paths, its
    /// configuration with the soft token only (slot 3), pkcsslotd in the foreground (its PID is
    /// the shell's job), the token initialised with the default SO PIN 87654321 and a user PIN,
    /// then the command given as arguments. pkcsslotd that does not come up fails the run with its log.
    static let setupScript = #"""
    set -eu
    work="$1"; shift
    for d in /etc/opencryptoki /var/lib/opencryptoki /run /dev/shm /var/log; do mount -t tmpfs -o mode=0755 cmk-ock "$d"; done
    mkdir -p /run/lock /var/lib/opencryptoki/swtok/TOK_OBJ
    chgrp -R pkcs11 /var/lib/opencryptoki && chmod -R 0770 /var/lib/opencryptoki
    if [ -n "${CMK_OCK_CONFIG:-}" ]; then printf '%s\n' "$CMK_OCK_CONFIG"; else printf 'version opencryptoki-3.1\nslot 3\n{\nstdll = libpkcs11_sw.so\n}\n'; fi > /etc/opencryptoki/opencryptoki.conf
    ${CMK_OCK_SLOTD:-pkcsslotd} -f > "$work/pkcsslotd.log" 2>&1 &
    slotd=$!
    i=0
    while [ ! -S /run/pkcsslotd.socket ]; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 $slotd 2>/dev/null; then
            echo "pkcsslotd did not start (no /run/pkcsslotd.socket after $((i / 10)) s):"; cat "$work/pkcsslotd.log"; exit 3
        fi
        sleep 0.1
    done
    printf '%s\n' "$CMK_OCK_LABEL" | pkcsconf -I -c 3 -S 87654321 > "$work/pkcsconf.log" 2>&1 || { echo "pkcsconf -I failed:"; cat "$work/pkcsconf.log"; exit 4; }
    pkcsconf -P -c 3 -S 87654321 -n 11223344 >> "$work/pkcsconf.log" 2>&1 || { echo "pkcsconf -P failed:"; cat "$work/pkcsconf.log"; exit 4; }
    pkcsconf -u -c 3 -S 11223344 -n 4711test >> "$work/pkcsconf.log" 2>&1 || { echo "pkcsconf -u failed:"; cat "$work/pkcsconf.log"; exit 4; }
    umask 077 && printf '4711test\n' > "$work/token.pin"
    "$@"
    """#

    /// Runs `command` in a fresh namespace with its own pkcsslotd and initialised soft token; the
    /// command sees `CMK_OPENCRYPTOKI_NAMESPACE` (the work directory, which holds `token.pin`).
    /// Returns its exit status and output (setup's included); throws saying why when openCryptoki
    /// or unshare is missing.
    static func runInNamespace(_ command: [String], environment extra: [String: String] = [:]) throws -> (status: Int32, output: String) {
        for path in [module, "/usr/sbin/pkcsslotd", "/usr/sbin/pkcsconf", "/usr/bin/unshare"] where !FileManager.default.fileExists(atPath: path) {
            throw Failure(description: "\(path) is missing: install Debian's opencryptoki and util-linux packages (scripts/install-deps.sh) to run the openCryptoki tests")
        }
        let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("cmk-ock-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: work) }
        let script = work.appendingPathComponent("setup.sh")
        try setupScript.write(to: script, atomically: true, encoding: .utf8)
        let log = work.appendingPathComponent("output.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["--mount", "--ipc", "--pid", "--fork", "--mount-proc", "--propagation", "private",
                             "/bin/sh", script.path, work.path] + command
        var environment = ProcessInfo.processInfo.environment
        environment[insideVariable] = work.path
        environment["CMK_OCK_LABEL"] = label
        for (name, value) in extra { environment[name] = value }
        process.environment = environment
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try? handle.close()
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return (process.terminationStatus, output)
    }

    /// Outside the namespace: runs this test binary filtered to `test` (a Swift Testing filter,
    /// e.g. `OpenCryptokiTests/conformance`) inside one, and records an issue with its output
    /// unless exactly one test ran and passed.
    static func runSelf(_ test: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let binary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let (status, output) = try runInNamespace([binary, "--testing-library", "swift-testing", "--no-parallel", "--filter", test])
        let ranOne = output.contains("Test run with 1 test") && output.contains("passed")
        #expect(status == 0 && ranOne, "\(test) in its openCryptoki namespace exited \(status):\n\(output.suffix(6000))",
                sourceLocation: sourceLocation)
    }

    /// Inside the namespace: the soft token as a test token.
    static func token() throws -> OpenCryptokiToken {
        guard inside else { throw Failure(description: "OpenCryptoki.token() is only available inside the test's namespace") }
        return OpenCryptokiToken()
    }
}

/// The namespace's soft token: one per namespace (openCryptoki's soft token is a single token),
/// with RSA-OAEP-256 (its soft token decrypts CKM_RSA_PKCS_OAEP with SHA-256/MGF1-SHA-256 and has
/// no AES key wrap).
struct OpenCryptokiToken: TestToken {
    var label: String { OpenCryptoki.label }
    var wrapAlgorithm: WrapAlgorithm { .rsaOAEP256 }
    var name: String { "openCryptoki" }

    func configuration(clock: any WallClock, sessions: Int, label: String? = nil) -> PKCS11VaultConfiguration {
        PKCS11VaultConfiguration(modulePath: OpenCryptoki.module, tokenLabel: label ?? self.label, pin: .file(OpenCryptoki.pinFile),
                                 sessions: sessions, wrapAlgorithm: .rsaOAEP256, clock: clock)
    }

    func vault(clock: any WallClock, sessions: Int) throws -> PKCS11KeyVault {
        try PKCS11KeyVault(configuration: configuration(clock: clock, sessions: sessions))
    }

    /// The same module asked for a label no slot holds: the HSM is gone for this process.
    func unplugged(clock: any WallClock) throws -> (vault: PKCS11KeyVault, present: String) {
        (try PKCS11KeyVault(configuration: configuration(clock: clock, sessions: 2, label: "unplugged-hsm")), label)
    }

    func remove() {}
}

/// A token the shared suites run on: SoftHSM (A256KWP) or openCryptoki's soft token (RSA-OAEP-256).
protocol TestToken: Sendable {
    var label: String { get }
    var wrapAlgorithm: WrapAlgorithm { get }
    var name: String { get }
    func vault(clock: any WallClock, sessions: Int) throws -> PKCS11KeyVault
    /// A provider of the same host whose token is gone, and the label of the token still present.
    func unplugged(clock: any WallClock) throws -> (vault: PKCS11KeyVault, present: String)
    func remove()
}
