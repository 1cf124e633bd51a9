@testable import CMKConfiguration
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Whoever can change the configuration file chooses the master key and the state directory, so
/// `load` refuses a file (or a directory holding it) that anyone but its owner or root could
/// change, and a symbolic link. Real files, real modes, real owners (the tests run as root).
@Suite("Who may change the configuration file")
struct FileAccessTests {
    /// A user that is neither root nor this process's user.
    static let nobody: uid_t = 65534

    /// A fresh directory (mode `directoryMode`) holding a valid configuration at `mode`.
    struct Setup {
        let directory: String
        let path: String

        init(mode: mode_t = 0o644, directoryMode: mode_t = 0o755, name: String = "cmk-syncer.yaml") throws {
            directory = try Fixture.temporaryDirectory()
            path = directory + "/" + name
            try Fixture.yaml().write(toFile: path, atomically: false, encoding: .utf8)
            try #require(chmod(path, mode) == 0)
            try #require(chmod(directory, directoryMode) == 0)
        }

        func cleanUp() {
            chmod(directory, 0o700)
            try? FileManager.default.removeItem(atPath: directory)
        }

        /// The error `load` throws for `file` (default: the configuration); records an issue if it loads.
        func failure(_ file: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigurationError? {
            do {
                _ = try SyncerConfiguration.load(path: file ?? path, environment: [:])
                Issue.record("\(file ?? path) loaded, expected a refusal", sourceLocation: sourceLocation)
                return nil
            } catch {
                return error
            }
        }
    }

    @Test(arguments: [0o644, 0o640, 0o600, 0o400, 0o444, 0o604] as [mode_t])
    func readableByOthersIsFine(mode: mode_t) throws {
        let setup = try Setup(mode: mode)
        defer { setup.cleanUp() }
        let configuration = try SyncerConfiguration.load(path: setup.path, environment: [:])
        #expect(configuration.accounts.map(\.name) == ["files-1"])
    }

    @Test(arguments: [(0o666, "0666"), (0o620, "0620"), (0o664, "0664"), (0o646, "0646"), (0o602, "0602"), (0o777, "0777")] as [(mode_t, String)])
    func writableByGroupOrOthersIsRefused(mode: mode_t, octal: String) throws {
        let setup = try Setup(mode: mode)
        defer { setup.cleanUp() }
        let error = try #require(setup.failure())
        #expect(error.codeName == "configuration.unsafe-file")
        #expect(error.category == .configuration)
        #expect(error.keyPath == nil)
        #expect(error.description == "\(setup.path): has mode \(octal), which lets group or others write it, and so choose the master key and the state directory; fix it with: chmod go-w '\(setup.path)'")
    }

    @Test func aSymbolicLinkIsRefusedEvenToAGoodFile() throws {
        let setup = try Setup(mode: 0o600)
        defer { setup.cleanUp() }
        let link = setup.directory + "/link.yaml"
        try #require(symlink(setup.path, link) == 0)
        let error = try #require(setup.failure(link))
        #expect(error.codeName == "configuration.unsafe-file")
        #expect(error.description == "\(link): is a symbolic link; the configuration must be a regular file: pass the file itself (readlink -f '\(link)') with --config, or replace the link with the file")

        let dangling = setup.directory + "/dangling.yaml"
        try #require(symlink(setup.directory + "/nowhere.yaml", dangling) == 0)
        #expect(setup.failure(dangling)?.codeName == "configuration.unsafe-file")
    }

    @Test func aSymbolicLinkInTheDirectoryPartIsFollowed() throws {
        let setup = try Setup()
        defer { setup.cleanUp() }
        let linkedDirectory = setup.directory + "/etc"
        try #require(symlink(setup.directory, linkedDirectory) == 0)
        _ = try SyncerConfiguration.load(path: linkedDirectory + "/cmk-syncer.yaml", environment: [:])
    }

    @Test func anotherUsersFileIsRefused() throws {
        try #require(geteuid() == 0, "the suite runs as root, which may give a file to another user")
        let setup = try Setup(mode: 0o644)
        defer { setup.cleanUp() }
        try #require(chown(setup.path, Self.nobody, gid_t(Self.nobody)) == 0)
        let error = try #require(setup.failure())
        #expect(error.codeName == "configuration.unsafe-file")
        #expect(error.description == "\(setup.path): is owned by uid 65534, neither this process's user (uid 0) nor root, who alone may choose the master key and the state directory; fix it with: chown root '\(setup.path)'")
    }

    @Test func aFileOfRootIsFine() throws {
        // The packaged /etc/cmk-syncer/cmk-syncer.yaml is root's, 0644, read by the service's user.
        let setup = try Setup(mode: 0o644)
        defer { setup.cleanUp() }
        try #require(chown(setup.path, 0, 0) == 0)
        _ = try SyncerConfiguration.load(path: setup.path, environment: [:])
    }

    @Test(arguments: [(0o777, "0777"), (0o775, "0775"), (0o757, "0757"), (0o730, "0730")] as [(mode_t, String)])
    func aDirectoryOthersMayWriteIsRefused(mode: mode_t, octal: String) throws {
        let setup = try Setup(mode: 0o600, directoryMode: mode)
        defer { setup.cleanUp() }
        let error = try #require(setup.failure())
        #expect(error.codeName == "configuration.unsafe-file")
        #expect(error.description == "\(setup.path): is in the directory '\(setup.directory)', whose mode \(octal) lets group or others replace the file; fix it with: chmod go-w '\(setup.directory)'")
    }

    @Test func aStickyDirectoryLikeTmpIsFine() throws {
        // In a sticky directory only the file's owner (or root) may rename or remove it.
        let setup = try Setup(mode: 0o644, directoryMode: 0o1777)
        defer { setup.cleanUp() }
        _ = try SyncerConfiguration.load(path: setup.path, environment: [:])
    }

    @Test func aDirectoryOfAnotherUserIsRefused() throws {
        try #require(geteuid() == 0, "the suite runs as root, which may give a directory to another user")
        let setup = try Setup(mode: 0o644, directoryMode: 0o755)
        defer { setup.cleanUp() }
        try #require(chown(setup.directory, Self.nobody, gid_t(Self.nobody)) == 0)
        let error = try #require(setup.failure())
        #expect(error.codeName == "configuration.unsafe-file")
        #expect(error.description == "\(setup.path): is in the directory '\(setup.directory)', owned by uid 65534, neither this process's user (uid 0) nor root, who could replace the file; fix it with: chown root '\(setup.directory)'")
    }

    @Test func aFIFOIsRefusedWithoutWaitingForAWriter() throws {
        let setup = try Setup()
        defer { setup.cleanUp() }
        let fifo = setup.directory + "/fifo.yaml"
        try #require(mkfifo(fifo, 0o600) == 0)
        let error = try #require(setup.failure(fifo))
        #expect(error.code == .unreadable)
        #expect(error.description == "\(fifo): is not a regular file (a FIFO, socket or device): pass --config <file>")
    }
}
