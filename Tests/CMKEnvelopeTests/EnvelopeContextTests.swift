import CMKCore
@testable import CMKEnvelope
import Foundation
import Testing

/// The segments' AES-256-GCM context (BoringSSL's EVP_AEAD_CTX, keyed once per object): reused
/// for every segment, shared by copies of a sealer, never mixed up between objects, and a
/// refused segment leaves no bytes behind in the caller's buffer (it is decrypted in place there).
@Suite("Envelope AES-GCM context: one per object, reused for every segment")
struct EnvelopeContextTests {
    static func bytes(_ count: Int) -> [UInt8] { SecretBytes.random(count: count).withUnsafeBytes { Array($0) } }

    struct Object {
        let dekBytes = bytes(32), salt = bytes(32), prefix = bytes(7)
        let dekID = DEKID.random()
        let name: String
        var dek: SecretBytes { SecretBytes(copying: dekBytes) }

        func sealer(segmentSize: Int) throws -> EnvelopeSealer {
            try EnvelopeSealer(dek: dek, dekID: dekID, account: "acct-1", object: name, segmentSize: segmentSize, salt: salt, noncePrefix: prefix)
        }

        func reference(_ plaintext: [UInt8], segmentSize: Int) throws -> [UInt8] {
            try ReferenceEnvelope.seal(plaintext, dek: dekBytes, dekID: dekID, account: "acct-1", object: name,
                                       segmentSize: segmentSize, salt: salt, noncePrefix: prefix)
        }
    }

    @Test("interleaved sealers and openers of three objects each write and read their own object's bytes")
    func interleaved() throws {
        let objects = (0..<3).map { Object(name: "objects/\($0)") }
        let plaintexts = [Self.bytes(50_000), Self.bytes(4096), Self.bytes(20_001)]
        var sealers = try objects.map { try $0.sealer(segmentSize: 4096) }
        var sealed = [[UInt8]](repeating: [], count: 3)
        for start in stride(from: 0, to: 50_000, by: 5000) {
            for i in 0..<3 where start < plaintexts[i].count {
                sealers[i].update(plaintexts[i][start..<min(plaintexts[i].count, start + 5000)], into: &sealed[i])
            }
        }
        for i in 0..<3 { sealers[i].finish(into: &sealed[i]) }
        for i in 0..<3 { #expect(sealed[i] == (try objects[i].reference(plaintexts[i], segmentSize: 4096)), "object \(i)") }

        var openers = try (0..<3).map { i in
            let (header, _) = try #require(try EnvelopeHeader.parse(sealed[i]))
            return try EnvelopeOpener(header: header, account: "acct-1", object: objects[i].name, dek: objects[i].dek, dekID: objects[i].dekID)
        }
        let headerLengths = try sealed.map { try #require(try EnvelopeHeader.parse($0)).length }
        var opened = [[UInt8]](repeating: [], count: 3)
        for offset in stride(from: 0, to: 60_000, by: 3001) {
            for i in 0..<3 {
                let start = headerLengths[i] + offset
                guard start < sealed[i].count else { continue }
                try openers[i].feed(sealed[i][start..<min(sealed[i].count, start + 3001)], into: &opened[i])
            }
        }
        for i in 0..<3 {
            try openers[i].finish()
            #expect(opened[i] == plaintexts[i], "object \(i)")
        }
    }

    @Test("copies of one sealer share its context, also from concurrent tasks: each finishes its own object")
    func copiesShareTheContext() async throws {
        let object = Object(name: "objects/copied")
        let prefix = Self.bytes(9000)
        var sealer = try object.sealer(segmentSize: 4096)
        var head = [UInt8]()
        sealer.update(prefix, into: &head)
        let base = sealer
        let results = try await withThrowingTaskGroup(of: (Int, [UInt8], [UInt8]).self) { group in
            for task in 0..<8 {
                group.addTask {
                    var copy = base
                    let tail = Self.bytes(1 + task * 3000)
                    var out = [UInt8]()
                    for _ in 0..<50 {
                        var again = base
                        out.removeAll()
                        again.update(tail, into: &out)
                        again.finish(into: &out)
                    }
                    out.removeAll()
                    copy.update(tail, into: &out)
                    copy.finish(into: &out)
                    return (task, tail, out)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 8)
        for (task, tail, out) in results {
            #expect(head + out == (try object.reference(prefix + tail, segmentSize: 4096)), "task \(task)")
        }
    }

    @Test("a refused segment leaves the caller's buffer as it was: nothing of it, not even zeros",
          arguments: ["ciphertext", "tag", "final flag", "header salt"])
    func refusedSegmentLeavesNothing(place: String) throws {
        let object = Object(name: "objects/tampered")
        let plaintext = Self.bytes(3 * 4096 + 100)
        var sealed = try object.reference(plaintext, segmentSize: 4096)
        let headerLength = try #require(try EnvelopeHeader.parse(sealed)).length
        let frame = 17 + 4096 + 16
        let third = headerLength + 2 * frame
        // Segments 0 and 1 open before the third fails; the header is authenticated by every segment.
        var openedBefore = Array(plaintext[0..<(2 * 4096)])
        switch place {
        case "ciphertext": sealed[third + 17 + 1000] ^= 0x01
        case "tag": sealed[third + frame - 1] ^= 0x80
        case "final flag":  // a full segment declared final: the frame checks pass, GCM refuses (nonce and frame differ)
            sealed[third + 4] = 0x01
            sealed.removeLast(sealed.count - (third + frame))
        default:
            sealed[40] ^= 0x02
            openedBefore = []
        }
        let (header, _) = try #require(try EnvelopeHeader.parse(sealed))
        var opener = try EnvelopeOpener(header: header, account: "acct-1", object: object.name, dek: object.dek, dekID: object.dekID)
        let marker = [UInt8](repeating: 0xEE, count: 10)
        var out = marker
        let error = #expect(throws: EnvelopeError.self) {
            try opener.feed(sealed[headerLength...], into: &out)
        }
        #expect(error?.code == .authenticationFailed, "got \(String(describing: error))")
        #expect(error?.reason.contains(place == "header salt" ? "segment 0" : "segment 2") == true, "got \(String(describing: error))")
        #expect(out.count == marker.count + openedBefore.count, "\(out.count - marker.count - openedBefore.count) bytes of the refused segment stayed")
        #expect(out.elementsEqual(marker + openedBefore), "the caller's bytes or the segments before the refused one changed")
    }
}
