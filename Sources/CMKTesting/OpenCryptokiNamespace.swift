import Foundation

/// openCryptoki's soft token (Debian `opencryptoki` 3.8) for the tests. Its module talks to the
/// `pkcsslotd` daemon, and both use fixed host paths (/etc/opencryptoki, /var/lib/opencryptoki,
/// /run/pkcsslotd.socket, /var/lock/opencryptoki, /var/log/opencryptoki) and a System V shared
/// memory segment with a fixed key. Tests and cmk-bench never touch the host's: they run a command (a test
/// re-runs its own binary filtered to itself) in private mount, IPC and PID namespaces
/// (`unshare --mount --ipc --pid --fork --mount-proc`) where those directories are tmpfs, a
/// pkcsslotd of its own runs and the soft token is initialised (`pkcsconf -I`, `-P`, `-u`). The
/// namespace's processes (pkcsslotd included) end with it. docs/providers/pkcs11.md, "openCryptoki".
public enum OpenCryptokiNamespace {
    public static let module = "/usr/lib/x86_64-linux-gnu/opencryptoki/libopencryptoki.so.0"
    public static let label = "cmk-ock"
    public static let slot = "3"
    /// Set in the namespace: the test body runs there; outside, the test starts the namespace.
    public static let insideVariable = "CMK_OPENCRYPTOKI_NAMESPACE"
    public static var inside: Bool { ProcessInfo.processInfo.environment[insideVariable] != nil }
    /// The PIN file the namespace's setup wrote (0600).
    public static var pinFile: String { (ProcessInfo.processInfo.environment[insideVariable] ?? "/nonexistent") + "/token.pin" }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
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
    public static func runInNamespace(_ command: [String], environment extra: [String: String] = [:]) throws -> (status: Int32, output: String) {
        for path in [module, "/usr/sbin/pkcsslotd", "/usr/sbin/pkcsconf", "/usr/bin/unshare"] where !FileManager.default.fileExists(atPath: path) {
            throw Failure(description: "\(path) is missing: install Debian's opencryptoki and util-linux packages (scripts/install-deps.sh) to run the openCryptoki tests")
        }
        let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("cmk-ock-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: work) }
        let script = work.appendingPathComponent("setup.sh")
        try setupScript.write(to: script, atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment[insideVariable] = work.path
        environment["CMK_OCK_LABEL"] = label
        for (name, value) in extra { environment[name] = value }
        return try LoggedProcess.run("/usr/bin/unshare", ["--mount", "--ipc", "--pid", "--fork", "--mount-proc", "--propagation", "private",
                                                         "/bin/sh", script.path, work.path] + command,
                                     environment: environment, log: work.appendingPathComponent("output.log").path)
    }
}
