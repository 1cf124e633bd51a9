import CMKCore
import Foundation
import Glibc
import Testing

@Suite("System file calls")
struct SystemFileTests {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "systemfile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
    }

    private func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".tmp") }
    }

    @Test("atomic write replaces the file, sets the mode and leaves no temp file")
    func atomicWrite() throws {
        let path = directory + "/state.json"
        try SystemFile.atomicWrite(Data("one".utf8), to: path, mode: 0o600)
        try SystemFile.atomicWrite(Data("two".utf8), to: path, mode: 0o644)
        #expect(FileManager.default.contents(atPath: path) == Data("two".utf8))
        let info = try #require(try SystemFile.status(path))
        #expect(SystemFile.octal(info.st_mode) == "0644")
        #expect(try leftovers().isEmpty)
    }

    @Test("create-exclusively never overwrites")
    func createExclusively() throws {
        let path = directory + "/key.json"
        #expect(try SystemFile.createExclusively(Data("first".utf8), at: path, mode: 0o600))
        #expect(try SystemFile.createExclusively(Data("second".utf8), at: path, mode: 0o600) == false)
        #expect(FileManager.default.contents(atPath: path) == Data("first".utf8))
        #expect(try leftovers().isEmpty)
    }

    @Test("read to end returns every byte across chunk boundaries")
    func readToEnd() throws {
        let path = directory + "/big"
        let data = Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try SystemFile.atomicWrite(data, to: path, mode: 0o600)
        let fd = try #require(try SystemFile.open(path, O_RDONLY))
        defer { close(fd) }
        #expect(try SystemFile.readToEnd(fd, path) == data)
    }

    @Test("failures name the operation, the path and errno; missing files are nil where allowed")
    func failures() throws {
        let missing = directory + "/nope/file"
        #expect(try SystemFile.open(missing, O_RDONLY, missingOK: true) == nil)
        #expect(try SystemFile.status(missing) == nil)
        #expect(try SystemFile.unlink(missing) == false)
        do {
            try SystemFile.atomicWrite(Data("x".utf8), to: missing, mode: 0o600)
            Issue.record("writing into a missing directory succeeded")
        } catch {
            #expect(error.code == ENOENT)
            #expect(error.description.contains(directory + "/nope/"))
            #expect(error.description.contains("errno \(ENOENT)"))
            #expect(!error.isPermission)
        }
    }
}
