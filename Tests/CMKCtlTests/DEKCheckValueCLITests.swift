import Foundation
import Testing

/// Each DEK's wrapping is bound to its id and account by a check value (issue 14, defect 10): a
/// keyring whose active DEK carries another DEK's wrapping is refused instead of re-encrypting
/// objects under the wrong id for good.
@Suite("cmkctl: DEK check values")
struct DEKCheckValueCLITests {
    private typealias JSON = [String: Any]

    /// A setup with an object under an older DEK: pass, put, rotate, pass (the rebind mints the active DEK).
    private func setUp() throws -> (Harness, keyring: String) {
        let harness = try Harness()
        #expect(try harness.once().code == 0)
        #expect(try harness.ctl(["data", "put", "files-1", "doc.txt"], stdin: Data("genuine".utf8)).code == 0)
        #expect(try harness.ctl(["keys", "rotate"]).code == 0)
        #expect(try harness.once().code == 0)
        return (harness, harness.state + "/accounts/files-1/keyring.json")
    }

    private func read(_ path: String) throws -> JSON {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? JSON)
    }

    private func write(_ keyring: JSON, _ path: String) throws {
        try JSONSerialization.data(withJSONObject: keyring).write(to: URL(fileURLWithPath: path))
    }

    /// The keyring with `edit` applied to (active DEK, the other DEK).
    private func edited(_ keyring: JSON, _ edit: (inout JSON, inout JSON) -> Void) throws -> (JSON, activeID: String) {
        var keyring = keyring
        var deks = try #require(keyring["deks"] as? [JSON])
        #expect(deks.count == 2)
        let activeID = try #require(keyring["activeDEK"] as? String)
        let a = try #require(deks.firstIndex { $0["id"] as? String == activeID })
        var active = deks[a]
        var other = deks[1 - a]
        edit(&active, &other)
        deks[a] = active
        deks[1 - a] = other
        keyring["deks"] = deks
        return (keyring, activeID)
    }

    @Test func activeDEKWithAnotherDEKsWrappingIsRefused() throws {
        let (harness, path) = try setUp()
        defer { harness.cleanUp() }
        let genuine = try read(path)
        let deks = try #require(genuine["deks"] as? [JSON])
        #expect(deks.allSatisfy { ($0["kcv"] as? String).flatMap { Data(base64Encoded: $0) }?.count == 16 }, "\(deks)")

        let (swapped, activeID) = try edited(genuine) { active, other in active["wrappedKey"] = other["wrappedKey"] }
        try write(swapped, path)
        let refused = try harness.ctl(["data", "get", "files-1", "doc.txt"])
        #expect(refused.code == 1)
        #expect(refused.stderr.contains("storage.corrupt"), "\(refused.stderr)")
        #expect(refused.stderr.contains("account 'files-1'"), "\(refused.stderr)")
        #expect(refused.stderr.contains("DEK \(activeID)"), "\(refused.stderr)")
        #expect(refused.stderr.contains("check value"), "\(refused.stderr)")

        // Moving the check value along does not help: it binds the DEK to its id.
        let (both, _) = try edited(genuine) { active, other in
            active["wrappedKey"] = other["wrappedKey"]
            active["kcv"] = other["kcv"]
        }
        try write(both, path)
        #expect(try harness.ctl(["data", "get", "files-1", "doc.txt"]).code == 1)

        // Removing the active DEK's check value while the other keeps one is refused too.
        let (stripped, _) = try edited(genuine) { active, other in
            active["wrappedKey"] = other["wrappedKey"]
            active["kcv"] = nil
        }
        try write(stripped, path)
        let bare = try harness.ctl(["data", "get", "files-1", "doc.txt"])
        #expect(bare.code == 1)
        #expect(bare.stderr.contains("no check value"), "\(bare.stderr)")

        // With the genuine keyring back, the object reads: nothing was re-encrypted under a wrong key.
        try write(genuine, path)
        let get = try harness.ctl(["data", "get", "files-1", "doc.txt"])
        #expect(get.code == 0, "\(get.stderr)")
        #expect(get.stdout == Data("genuine".utf8))
        #expect(try harness.ctl(["data", "get", "files-1", "doc.txt"]).stdout == Data("genuine".utf8))
    }

    @Test func keyringWithoutCheckValuesStillWorksAndTheNextRebindAddsThem() throws {
        let (harness, path) = try setUp()
        defer { harness.cleanUp() }
        var legacy = try read(path)
        legacy["deks"] = try #require(legacy["deks"] as? [JSON]).map { dek in
            var dek = dek
            dek["kcv"] = nil
            return dek
        }
        try write(legacy, path)
        let get = try harness.ctl(["data", "get", "files-1", "doc.txt"])
        #expect(get.code == 0, "\(get.stderr)")
        #expect(get.stdout == Data("genuine".utf8))
        #expect(try harness.ctl(["keys", "rotate"]).code == 0)
        #expect(try harness.once().code == 0)
        let rebound = try #require(try read(path)["deks"] as? [JSON])
        #expect(rebound.allSatisfy { $0["kcv"] is String }, "\(rebound)")
    }
}
