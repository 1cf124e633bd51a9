import CMKCore
import CMKLocalVault
import Foundation
import Testing

/// A key document whose date is beyond the years 1 to 9999 (Fuzz/Corpus/local-vault/created-1e300.json,
/// checked with the local-vault fuzz target): the keys API's view of it (cmk-vault serves it) trapped
/// converting `created: 1e300` to whole seconds. Now every reader refuses the document as corrupt,
/// naming the field and not its value.
@Suite struct KeyDocumentDateRangeTests {
    @Test("a date outside the years 1 to 9999 is a corrupt key file for every reader, naming the field", arguments: [
        ("created", "1e300"), ("created", "-1e300"), ("expires", "253402300800"), ("created", "-62135596801"),
    ])
    func outOfRangeDateRefused(field: String, value: String) async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let version = try await vault.createKey(key(), size: .bits2048)
            let file = fixture.keyFile(key().name)
            var text = try String(contentsOf: file, encoding: .utf8)
            let pattern = try Regex(#""\#(field)" : [-0-9.e+]+"#)
            if text.contains(pattern) {
                text.replace(pattern, with: "\"\(field)\" : \(value)")
            } else {
                text.replace("\"enabled\" :", with: "\"\(field)\" : \(value),\n      \"enabled\" :")
            }
            try Data(text.utf8).write(to: file)
            let reopened = try fixture.open()
            for read in [
                { _ = try reopened.entry(key().name) },
                { _ = try await reopened.snapshot(of: key()) },
                { _ = try await reopened.publicKey(of: key(), version: version.id) },
            ] as [() async throws -> Void] {
                let error = await vaultError(read)
                #expect(error?.code == .corrupt)
                #expect(error?.description.contains("bad value at versions.0.\(field)") == true, "\(String(describing: error))")
                #expect(error?.description.contains(value) == false)
            }
        }
    }

    @Test("the edge dates themselves still read")
    func edgeDatesRead() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let version = try await vault.createKey(key(), size: .bits2048)
            let file = fixture.keyFile(key().name)
            var text = try String(contentsOf: file, encoding: .utf8)
            text.replace(try Regex(#""created" : [-0-9.e+]+"#), with: "\"created\" : -62135596800")
            text.replace("\"enabled\" :", with: "\"expires\" : 253402300799,\n      \"enabled\" :")
            try Data(text.utf8).write(to: file)
            let entry = try fixture.open().entry(key().name)
            #expect(entry.live?.versions.first?.version == version.id)
            #expect(entry.live?.versions.first?.created == -62_135_596_800)
        }
    }
}
