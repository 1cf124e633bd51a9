import CMKCore
@testable import CMKEnvelope
import Foundation
import Testing

private func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

struct Fixture {
    let dek = DEKWrapping.generateDEK()
    let dekID = DEKID.random()
    let account = "acct-file-1"
    let object = "reports/2026/q1.pdf"

    func seal(_ plaintext: [UInt8], segmentSize: Int = 1024, object: String? = nil, dek: SecretBytes? = nil, dekID: DEKID? = nil) throws -> [UInt8] {
        try EnvelopeSealer.seal(plaintext, dek: dek ?? self.dek, dekID: dekID ?? self.dekID, account: account,
                                object: object ?? self.object, segmentSize: segmentSize)
    }

    func open(_ sealed: [UInt8], account: String? = nil, object: String? = nil, dek: SecretBytes? = nil) throws -> [UInt8] {
        try EnvelopeOpener.open(sealed, account: account ?? self.account, objectID: object ?? self.object) { _ in dek ?? self.dek }
    }

    /// Byte ranges of each frame: (start, length) after the header.
    func frames(_ sealed: [UInt8]) throws -> [Range<Int>] {
        let (header, headerLength) = try #require(try EnvelopeHeader.parse(sealed))
        var ranges: [Range<Int>] = []
        var offset = headerLength
        while offset < sealed.count {
            let length = Int(sealed.readBigEndianUInt32(at: offset + 5))
            let total = 17 + length + 16
            ranges.append(offset..<(offset + total))
            offset += total
            _ = header
        }
        return ranges
    }
}

@Suite("Envelope format")
struct EnvelopeTests {
    let fixture = Fixture()

    @Test("round trips", arguments: [0, 1, 1023, 1024, 1025, 4096, 10_000])
    func roundTrip(size: Int) throws {
        let plaintext = randomBytes(size)
        let sealed = try fixture.seal(plaintext)
        #expect(try fixture.open(sealed) == plaintext)
        let segments = max(1, (size + 1023) / 1024)
        #expect(try fixture.frames(sealed).count == segments)
        #expect(sealed.count == EnvelopeHeader.fixedLength + 2 + fixture.account.utf8.count + fixture.object.utf8.count + segments * 33 + size)
    }

    @Test("streams in arbitrary chunks with bounded buffering", arguments: [1, 7, 1000, 1057, 5000])
    func streaming(chunk: Int) throws {
        let plaintext = randomBytes(9_000)
        var sealer = try EnvelopeSealer(dek: fixture.dek, dekID: fixture.dekID, account: fixture.account, object: fixture.object, segmentSize: 1024)
        var sealed = [UInt8]()
        var index = 0
        while index < plaintext.count {
            let end = min(index + chunk, plaintext.count)
            let out = sealer.update(plaintext[index..<end])
            #expect(out.count <= 2 * (1024 + 33) + chunk + 200)
            sealed += out
            index = end
        }
        sealed += sealer.finish()

        let (header, headerLength) = try #require(try EnvelopeHeader.parse(sealed))
        var opener = try EnvelopeOpener(header: header, account: fixture.account, object: fixture.object, dek: fixture.dek, dekID: header.dekID)
        var plain = [UInt8]()
        index = headerLength
        while index < sealed.count {
            let end = min(index + chunk, sealed.count)
            plain += try opener.feed(sealed[index..<end])
            index = end
        }
        try opener.finish()
        #expect(plain == plaintext)
    }

    @Test("whole segments sealed in place and non-contiguous input frame exactly like pending ones",
          arguments: [1024, 2048, 3072, 3073, 5000])
    func inPlaceAndNonContiguous(size: Int) throws {
        let plaintext = randomBytes(size)
        var sealer = try EnvelopeSealer(dek: fixture.dek, dekID: fixture.dekID, account: fixture.account, object: fixture.object, segmentSize: 1024)
        var sealed = [UInt8]()
        sealer.update(plaintext, into: &sealed)
        sealer.finish(into: &sealed)
        // A final segment is never empty unless the object is: an exact multiple ends with a full final segment.
        #expect(try fixture.frames(sealed).count == (size + 1023) / 1024)
        #expect(try fixture.open(sealed) == plaintext)

        var lazySealer = try EnvelopeSealer(dek: fixture.dek, dekID: fixture.dekID, account: fixture.account, object: fixture.object, segmentSize: 1024)
        var lazySealed = lazySealer.update(plaintext.lazy.map { $0 })
        lazySealed += lazySealer.finish()
        #expect(try fixture.frames(lazySealed).count == (size + 1023) / 1024)
        let (header, headerLength) = try #require(try EnvelopeHeader.parse(lazySealed))
        var opener = try EnvelopeOpener(header: header, account: fixture.account, object: fixture.object, dek: fixture.dek, dekID: header.dekID)
        var plain = [UInt8]()
        try opener.feed(lazySealed[headerLength...].lazy.map { $0 }, into: &plain)
        try opener.finish()
        #expect(plain == plaintext)
    }

    @Test("two seals of the same plaintext differ (fresh salt and nonce prefix)")
    func freshness() throws {
        let plaintext = randomBytes(100)
        #expect(try fixture.seal(plaintext) != fixture.seal(plaintext))
    }

    @Test("header carries the DEK id, ids and segment size")
    func header() throws {
        let sealed = try fixture.seal([1, 2, 3], segmentSize: 4096)
        let (header, length) = try #require(try EnvelopeHeader.parse(sealed))
        #expect(Array(sealed[0..<4]) == Array("CMKE".utf8))
        #expect(header.dekID == fixture.dekID)
        #expect(header.account == fixture.account)
        #expect(header.object == fixture.object)
        #expect(header.segmentSize == 4096)
        #expect(length == 69 + 2 + fixture.account.utf8.count + fixture.object.utf8.count)
        #expect(try EnvelopeHeader.parse(sealed.prefix(length - 1)) == nil)
    }

    @Test("a segment size outside the range is refused", arguments: [0, 15, 16 * 1_048_576 + 1])
    func badSegmentSize(size: Int) {
        #expect(throws: EnvelopeError(.invalidParameter, "")) { _ = try fixture.seal([1], segmentSize: size) }
    }
}

@Suite("Envelope tamper detection: each attack has its own error")
struct EnvelopeTamperTests {
    let fixture = Fixture()

    func expectCode(_ code: EnvelopeError.Code, _ body: () throws -> Void) {
        let error = #expect(throws: EnvelopeError.self, performing: body)
        #expect(error?.code == code, "got \(String(describing: error))")
        if let error { #expect(!error.reason.isEmpty) }
    }

    @Test("a flipped bit in any segment's ciphertext or tag")
    func flippedBit() throws {
        let sealed = try fixture.seal(randomBytes(4000))
        for frame in try fixture.frames(sealed) {
            for position in [frame.lowerBound + 17, frame.upperBound - 1] {
                var tampered = sealed
                tampered[position] ^= 0x04
                expectCode(.authenticationFailed) { _ = try fixture.open(tampered) }
            }
        }
    }

    @Test("a flipped bit in the header's salt or nonce prefix")
    func flippedHeader() throws {
        let sealed = try fixture.seal(randomBytes(100))
        for position in [40, 62] {
            var tampered = sealed
            tampered[position] ^= 0x80
            // The salt's first 8 bytes are repeated in frames: flip beyond them.
            expectCode(.authenticationFailed) { _ = try fixture.open(tampered) }
        }
    }

    @Test("truncation at a segment boundary, inside a segment, and inside the header")
    func truncation() throws {
        let sealed = try fixture.seal(randomBytes(4000))
        let frames = try fixture.frames(sealed)
        expectCode(.truncated) { _ = try fixture.open(Array(sealed[..<frames[2].lowerBound])) }
        expectCode(.truncated) { _ = try fixture.open(Array(sealed[..<(frames[1].lowerBound + 100)])) }
        expectCode(.truncated) { _ = try fixture.open(Array(sealed[..<frames[0].lowerBound])) }
        expectCode(.truncated) { _ = try fixture.open(Array(sealed.prefix(30))) }
    }

    @Test("an object that ends right after its header, or inside its first segment, says so (not 'segment -1')")
    func noSegments() throws {
        let sealed = try fixture.seal(randomBytes(4000))
        let frames = try fixture.frames(sealed)
        for cut in [frames[0].lowerBound, frames[0].lowerBound + 5, frames[0].lowerBound + 100] {
            do {
                _ = try fixture.open(Array(sealed[..<cut]))
                Issue.record("a truncated object opened")
            } catch let error as EnvelopeError {
                #expect(error.code == .truncated)
                #expect(!error.reason.contains("-1"), "\(error.reason)")
                #expect(error.reason.contains("segment 0"), "\(error.reason)")
                #expect(error.reason.contains("\(cut - frames[0].lowerBound) bytes"), "\(error.reason)")
            }
        }
    }

    @Test("dropping the final segment and marking an earlier one final are both refused")
    func finalFlag() throws {
        let sealed = try fixture.seal(randomBytes(4000))
        let frames = try fixture.frames(sealed)
        var forged = sealed
        forged[frames[1].lowerBound + 4] = 0x01
        expectCode(.authenticationFailed) { _ = try fixture.open(Array(forged[..<frames[2].lowerBound])) }
    }

    @Test("reordered segments")
    func reordered() throws {
        let sealed = try fixture.seal(randomBytes(4000))
        let frames = try fixture.frames(sealed)
        let head: [UInt8] = Array(sealed[..<frames[0].lowerBound])
        let parts: [[UInt8]] = frames.map { Array(sealed[$0]) }
        let swapped: [UInt8] = head + parts[1] + parts[0] + parts[2] + parts[3]
        expectCode(.segmentOutOfOrder) { _ = try fixture.open(swapped) }
        let duplicated: [UInt8] = head + parts[0] + parts[1] + parts[1] + parts[2] + parts[3]
        expectCode(.segmentOutOfOrder) { _ = try fixture.open(duplicated) }
    }

    @Test("a segment swapped in from another object under the same DEK")
    func swappedFromAnotherObject() throws {
        let plaintext = randomBytes(4000)
        let sealed = try fixture.seal(plaintext)
        let other = try fixture.seal(plaintext)
        let frames = try fixture.frames(sealed)
        let otherFrames = try fixture.frames(other)
        let mixed: [UInt8] = Array(sealed[..<frames[1].lowerBound]) + Array(other[otherFrames[1]]) + Array(sealed[frames[2].lowerBound...])
        expectCode(.foreignSegment) { _ = try fixture.open(mixed) }
    }

    @Test("trailing bytes after the final segment")
    func trailing() throws {
        let sealed = try fixture.seal(randomBytes(100))
        expectCode(.trailingData) { _ = try fixture.open(sealed + [0]) }
    }

    @Test("another account's object")
    func wrongAccount() throws {
        let sealed = try fixture.seal(randomBytes(100))
        expectCode(.wrongAccount) { _ = try fixture.open(sealed, account: "acct-sql-1") }
    }

    @Test("another object id")
    func wrongObject() throws {
        let sealed = try fixture.seal(randomBytes(100))
        expectCode(.wrongObject) { _ = try fixture.open(sealed, object: "reports/other.pdf") }
    }

    @Test("an account id rewritten in the header to pass the id check")
    func rewrittenAccount() throws {
        let sealed = try fixture.seal(randomBytes(100))
        var tampered = sealed
        let start = 69
        tampered[start + fixture.account.utf8.count - 1] = UInt8(ascii: "2")
        expectCode(.authenticationFailed) { _ = try fixture.open(tampered, account: "acct-file-2") }
    }

    @Test("the wrong DEK: a different id, or different bytes under the same id")
    func wrongDEK() throws {
        let sealed = try fixture.seal(randomBytes(100))
        let (header, length) = try #require(try EnvelopeHeader.parse(sealed))
        expectCode(.wrongDEK) {
            _ = try EnvelopeOpener(header: header, account: fixture.account, object: fixture.object, dek: fixture.dek, dekID: .random())
        }
        expectCode(.authenticationFailed) { _ = try fixture.open(sealed, dek: DEKWrapping.generateDEK()) }
        _ = length
    }

    @Test("not an envelope, a future version and an unknown suite")
    func headerChecks() throws {
        let sealed = try fixture.seal([1, 2, 3])
        expectCode(.notAnEnvelope) { _ = try fixture.open(Array("PK\u{3}\u{4}hello world".utf8)) }
        var version = sealed
        version[4] = 2
        expectCode(.unsupportedVersion) { _ = try fixture.open(version) }
        var suite = sealed
        suite[5] = 9
        expectCode(.unsupportedSuite) { _ = try fixture.open(suite) }
        var length = sealed
        length[6] = 0xFF
        expectCode(.malformedHeader) { _ = try fixture.open(length) }
    }

    @Test("input shorter than the magic: bytes that differ from it are not an envelope, a prefix of it is truncated")
    func shorterThanMagic() throws {
        for short in [[0x50], [0x43, 0x4D, 0x00], Array("PK".utf8)] as [[UInt8]] {
            expectCode(.notAnEnvelope) { _ = try fixture.open(short) }
            #expect(throws: EnvelopeError(.notAnEnvelope, "")) { _ = try EnvelopeHeader.parse(short) }
        }
        for prefix in 0..<4 {
            let error = #expect(throws: EnvelopeError.self) { _ = try fixture.open(Array(EnvelopeHeader.magic.prefix(prefix))) }
            #expect(error?.code == .truncated)
            #expect(error?.reason == "object of \(prefix) bytes ends inside the 4-byte envelope magic", "got \(String(describing: error))")
        }
    }

    @Test("a segment size outside 16 B ... 16 MiB in a stored header has its own code")
    func segmentSizeOutOfRange() throws {
        let sealed = try fixture.seal([1, 2, 3])
        for size in [0, 15, 16 * 1_048_576 + 1, Int(UInt32.max)] {
            var tampered = sealed
            tampered.replaceSubrange(8..<12, with: [UInt8(size >> 24 & 0xFF), UInt8(size >> 16 & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size & 0xFF)])
            let error = #expect(throws: EnvelopeError.self) { _ = try fixture.open(tampered) }
            #expect(error?.code == .segmentSizeOutOfRange, "got \(String(describing: error))")
            #expect(error?.reason == "segment size \(size) is outside 16...16777216")
        }
    }

    @Test("a frame that declares an impossible length")
    func badLength() throws {
        let sealed = try fixture.seal(randomBytes(4000))
        let frames = try fixture.frames(sealed)
        var tampered = sealed
        tampered[frames[0].lowerBound + 7] = 0x7F
        expectCode(.malformedSegment) { _ = try fixture.open(tampered) }
    }

    @Test("errors never contain plaintext or key bytes")
    func noSecretsInErrors() throws {
        let secret = Array("top-secret-payload".utf8)
        let sealed = try fixture.seal(secret)
        var tampered = sealed
        tampered[tampered.count - 1] ^= 1
        let error = #expect(throws: EnvelopeError.self) { _ = try fixture.open(tampered) }
        let text = String(describing: error)
        #expect(!text.contains("top-secret"))
        #expect(!text.contains(fixture.dek.withUnsafeBytes { Hex.encode($0) }))
    }
}
