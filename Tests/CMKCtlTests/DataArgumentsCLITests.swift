import Foundation
import Glibc
import Testing

/// Issue 24, defects 0 and 16: `cmkctl data get --out` never replaces what PATH is, and object
/// names that start with '-' work after '--' and never print help with exit 0. Real `cmkctl`,
/// real device nodes (made in a scratch folder, never in /dev), FIFOs and links.
@Suite("cmkctl data: --out destinations and dashed names", .serialized)
struct DataArgumentsCLITests {
    static let plaintext = Data("the plaintext of o\n".utf8)

    /// A set-up embedded default with object `o` in files-1, and a scratch folder.
    static func prepared() throws -> (Harness, String) {
        let harness = try Harness()
        let once = try harness.once()
        try #require(once.code == 0, "\(once.stderr)")
        let put = try harness.ctl(["data", "put", "files-1", "o"], stdin: plaintext)
        try #require(put.code == 0, "\(put.stderr)")
        let scratch = harness.root + "/out"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        return (harness, scratch)
    }

    /// `cmkctl data ARGS` with --config before the arguments (after '--' it would be a name).
    static func data(_ harness: Harness, _ arguments: [String], stdin: Data? = nil) throws -> Harness.Result {
        try Harness.run(try Harness.binary("cmkctl"), ["data", arguments[0], "--config", harness.config] + arguments.dropFirst(), stdin: stdin)
    }

    static func lstatus(_ path: String) throws -> stat {
        var info = stat()
        try #require(lstat(path, &info) == 0, "lstat \(path): \(String(cString: strerror(errno)))")
        return info
    }

    /// Nothing but `expected` in the scratch folder: no temporary left behind.
    static func onlyFiles(_ scratch: String, _ expected: Set<String>) throws {
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: scratch)) == expected)
    }

    @Test("a character device is written in place and stays the device")
    func deviceNode() throws {
        let (harness, scratch) = try Self.prepared()
        defer { harness.cleanUp() }
        let null = scratch + "/null"
        let made = try Harness.run("/usr/bin/mknod", [null, "c", "1", "3"])
        try #require(made.code == 0, "mknod: \(made.stderr)")

        let get = try Self.data(harness, ["get", "files-1", "o", "--out", null])
        #expect(get.code == 0, "\(get.stderr)")
        let info = try Self.lstatus(null)
        #expect(info.st_mode & S_IFMT == S_IFCHR, "\(null) is no longer a character device")
        #expect(info.st_rdev == 1 << 8 | 3, "device 1,3 (glibc's makedev for small numbers)")
        try Self.onlyFiles(scratch, ["null"])
    }

    @Test("a FIFO is written in place for its reader and stays a FIFO")
    func fifo() throws {
        let (harness, scratch) = try Self.prepared()
        defer { harness.cleanUp() }
        let fifo = scratch + "/pipe", received = harness.root + "/received"
        try #require(mkfifo(fifo, 0o600) == 0)
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/bin/sh")
        reader.arguments = ["-c", "exec cat \"$0\" > \"$1\"", fifo, received]
        try reader.run()
        // A reader whose FIFO was replaced waits for a writer forever: bounded, then killed.
        defer { if reader.isRunning { kill(reader.processIdentifier, SIGKILL); reader.waitUntilExit() } }

        let get = try Self.data(harness, ["get", "files-1", "o", "--out", fifo])
        #expect(get.code == 0, "\(get.stderr)")
        let deadline = Date().addingTimeInterval(10)
        while reader.isRunning, Date() < deadline { usleep(20_000) }
        #expect(!reader.isRunning, "the FIFO's reader never saw a writer")
        #expect(FileManager.default.contents(atPath: received) == Self.plaintext)
        #expect(try Self.lstatus(fifo).st_mode & S_IFMT == S_IFIFO, "the FIFO was replaced")
        try Self.onlyFiles(scratch, ["pipe"])
    }

    @Test("a symbolic link is followed: the file it leads to gets the object, the link stays")
    func symbolicLink() throws {
        let (harness, scratch) = try Self.prepared()
        defer { harness.cleanUp() }
        let target = scratch + "/real", link = scratch + "/link"
        try Data("old".utf8).write(to: URL(fileURLWithPath: target))
        try #require(symlink("real", link) == 0)

        let get = try Self.data(harness, ["get", "files-1", "o", "--out", link])
        #expect(get.code == 0, "\(get.stderr)")
        #expect(try Self.lstatus(link).st_mode & S_IFMT == S_IFLNK, "the link was replaced")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "real")
        #expect(FileManager.default.contents(atPath: target) == Self.plaintext)
        #expect(try Self.lstatus(target).st_mode & 0o777 == 0o600)
        try Self.onlyFiles(scratch, ["real", "link"])
    }

    @Test("a link to nothing and a directory are refused (exit 2) and left as they are")
    func refused() throws {
        let (harness, scratch) = try Self.prepared()
        defer { harness.cleanUp() }
        let dangling = scratch + "/dangling", directory = scratch + "/dir"
        try #require(symlink("nowhere", dangling) == 0)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)

        let toLink = try Self.data(harness, ["get", "files-1", "o", "--out", dangling])
        #expect(toLink.code == 2)
        #expect(toLink.stderr.contains("symbolic link to a file that does not exist"), "\(toLink.stderr)")
        let toDirectory = try Self.data(harness, ["get", "files-1", "o", "--out", directory])
        #expect(toDirectory.code == 2)
        #expect(toDirectory.stderr.contains("is a directory"), "\(toDirectory.stderr)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dangling) == "nowhere")
        try Self.onlyFiles(scratch, ["dangling", "dir"])
    }

    @Test("a new or regular file is written through a temporary file and replaced whole")
    func regularFiles() throws {
        let (harness, scratch) = try Self.prepared()
        defer { harness.cleanUp() }
        let existing = scratch + "/existing", fresh = scratch + "/fresh"
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: existing))
        for path in [existing, fresh] {
            let get = try Self.data(harness, ["get", "files-1", "o", "--out", path])
            #expect(get.code == 0, "\(get.stderr)")
            #expect(FileManager.default.contents(atPath: path) == Self.plaintext)
            #expect(try Self.lstatus(path).st_mode & 0o7777 == 0o600)
        }
        // A failed read leaves neither a partial file nor a temporary.
        let missing = try Self.data(harness, ["get", "files-1", "absent", "--out", scratch + "/absent"])
        #expect(missing.code == 1)
        try Self.onlyFiles(scratch, ["existing", "fresh"])
    }

    @Test("object names that start with '-' work after '--'; without it they are a usage error, never help")
    func dashedNames() throws {
        let (harness, _) = try Self.prepared()
        defer { harness.cleanUp() }
        let content = Data("dash\n".utf8)
        for name in ["-dash", "-h", "--help"] {
            let put = try Self.data(harness, ["put", "files-1", "--", name], stdin: content)
            #expect(put.code == 0, "put \(name): \(put.stderr)")
            let get = try Self.data(harness, ["get", "files-1", "--", name])
            #expect(get.code == 0 && get.stdout == content, "get \(name): \(get.stderr)")
        }
        for arguments in [["get", "files-1", "-dash"], ["get", "files-1", "-h"], ["get", "files-1", "o", "-dash"],
                          ["put", "files-1", "-dash"], ["put", "files-1", "-ah"]] {
            let result = try Self.data(harness, arguments, stdin: content)
            #expect(result.code == 2, "\(arguments): exit \(result.code)")
            #expect(!result.text.contains("OVERVIEW") && !result.stderr.contains("OVERVIEW"), "\(arguments) printed help")
            #expect(result.stderr.contains("--"), "\(arguments): \(result.stderr)")
        }
        #expect(try Self.data(harness, ["get", "files-1", "-dash"]).stderr.contains("goes after '--'"))
        let help = try Self.data(harness, ["get", "--help"])
        #expect(help.code == 0 && help.text.contains("goes after '--'"), "\(help.text)")
        let putHelp = try Self.data(harness, ["put", "--help"])
        #expect(putHelp.code == 0 && putHelp.text.contains("goes after '--'"), "\(putHelp.text)")
    }
}
