import CMKCore
@testable import CMKPKCS11
import Foundation
import Testing

/// What the pkcs11-record fuzz target found in the key record and version ids (docs/testing/fuzzing.md,
/// Fuzz/Corpus/pkcs11-record/crash-*): no token is needed, these are the parsers of what a token holds.
@Suite struct KeyRecordParsingTests {
    static let key = try! KeyReference("data-at-rest-aes")

    @Test("a CKA_ID of 16 bytes 0xff (made by other tools) has no creation time, and no date traps in the record's encoding")
    func foreignIDDoesNotTrap() throws {
        // crash-a0274e7e…: VersionID.created read this id as the year 584,556,019 and KeyRecord.milliseconds
        // trapped converting it to Int64, as a pull or an update that records the version's dates would.
        #expect(VersionID.created([UInt8](repeating: 0xff, count: 16)) == nil)
        #expect(VersionID.created([0x7f] + [UInt8](repeating: 0, count: 15)) == nil)
        let ours = try #require(VersionID.created(VersionID.make(at: Date(timeIntervalSince1970: 1_796_513_307.8))))
        #expect(KeyRecord.milliseconds(ours) == 1_796_513_307_800)
        for date in [Date.distantFuture, Date.distantPast, Date(timeIntervalSince1970: 1e300), Date(timeIntervalSince1970: -1e300)] {
            let written = KeyRecord.milliseconds(date)
            #expect(KeyRecord.millisecondRange.contains(written))
        }
        var record = KeyRecord()
        record.versions["ffffffffffffffffffffffffffffffff"] = .init(created: Date(timeIntervalSince1970: 1e300))
        #expect(try KeyRecord.decode(record.encoded(), key: Self.key).versions.count == 1)
    }

    @Test("every whole millisecond survives a read and a write (crash-3cc70273…: 1307800 came back as 1307799)", arguments: [
        Int64(1_307_800), 1_076_458_958_291, 1_796_513_307_800, 1_924_992_000_250, 0, -1, -62_135_596_800_000, 253_402_300_799_999,
    ])
    func millisecondsRoundTrip(milliseconds: Int64) throws {
        let json = #"{"revision":1,"versions":{"000001a248899c981873ee129b4bc4a7":{"created":\#(milliseconds)}}}"#
        let record = try KeyRecord.decode(Array(json.utf8), key: Self.key)
        #expect(KeyRecord.milliseconds(try #require(record.versions.values.first).created) == milliseconds)
        #expect(record.encoded() == Array(json.utf8))
        #expect(try KeyRecord.decode(record.encoded(), key: Self.key) == record)
    }

    @Test("the counts in a sweep of a million consecutive milliseconds all survive (240,000 of these were lost before)")
    func millisecondsSweep() {
        var lost = 0
        for milliseconds in Int64(1_076_458_000_000)..<1_076_459_000_000 where KeyRecord.milliseconds(KeyRecord.date(milliseconds: milliseconds)) != milliseconds {
            lost += 1
        }
        #expect(lost == 0)
    }

    @Test("an instant outside the years 1 to 9999 is a corrupt record naming the field, not its value", arguments: [
        "9223372036854775807", "-9223372036854775808", "253402300800000", "-62135596800001",
    ])
    func outOfRangeRefused(milliseconds: String) {
        let json = #"{"revision":1,"versions":{"000001a248899c981873ee129b4bc4a7":{"created":\#(milliseconds)}}}"#
        #expect {
            try KeyRecord.decode(Array(json.utf8), key: Self.key)
        } throws: { error in
            let text = "\(error)"
            return (error as? VaultError)?.code == .corrupt && text.contains("bad value at versions.000001a248899c981873ee129b4bc4a7.created")
                && !text.contains(milliseconds)
        }
    }
}

extension KeyRecordParsingTests {
    @Test("a version id is hex digits only: a sign no longer names another version's CKA_ID", arguments: [
        "00+001a248899c981873ee129b4bc4a7", "+0", "-0", "0x", "+f+f", " 0", "0g", "０0",
    ])
    func versionIDWithSignRefused(id: String) {
        // crash-…: "00+001a248899c981873ee129b4bc4a7" was read as the CKA_ID of 000001a248899c981873ee129b4bc4a7.
        #expect(VersionID.bytes(id) == nil)
    }

    @Test("a hex version id is its CKA_ID, either case")
    func versionIDHex() {
        #expect(VersionID.bytes("000001a248899c981873ee129b4bc4a7") == [0, 0, 1, 0xa2, 0x48, 0x89, 0x9c, 0x98, 0x18, 0x73, 0xee, 0x12, 0x9b, 0x4b, 0xc4, 0xa7])
        #expect(VersionID.bytes("ABcd") == [0xab, 0xcd])
        #expect(VersionID.bytes("") == nil && VersionID.bytes("abc") == nil && VersionID.bytes(String(repeating: "0", count: 130)) == nil)
    }
}
