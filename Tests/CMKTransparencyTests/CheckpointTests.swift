import Foundation
import Testing

@testable import CMKTransparency

/// Checkpoints (c2sp.org/tlog-checkpoint): the published example, signing and opening with a
/// pinned key and origin, and strict parsing of the body.
@Suite("Checkpoints")
struct CheckpointTests {
    static let origin = "cmk-vault.test/security-log"

    @Test("the c2sp.org/tlog-checkpoint example parses")
    func c2spExample() throws {
        let note = try SignedNote(parsing: """
            example.com/behind-the-sofa
            20852163
            CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

            \u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=

            """)
        let checkpoint = try Checkpoint(text: note.text)
        #expect(checkpoint.origin == "example.com/behind-the-sofa")
        #expect(checkpoint.size == 20_852_163)
        #expect(checkpoint.rootHash.base64 == "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
        #expect(checkpoint.text == note.text)
        #expect(note.signatures.first?.name == "example.com/behind-the-sofa")
    }

    @Test("a signed checkpoint opens with the pinned key and origin, and with nothing else")
    func signAndOpen() throws {
        let signer = try NoteSigner.generate(name: Self.origin)
        let (tree, _) = try makeTree(records: 10)
        let checkpoint = try Checkpoint(origin: Self.origin, size: 10, rootHash: tree.rootHash(), extensionLines: ["time 2025-01-01T00:00:00Z"])
        let note = try checkpoint.signedNote(by: signer).serialized
        #expect(note.hasPrefix("\(Self.origin)\n10\n\(try tree.rootHash().base64)\ntime 2025-01-01T00:00:00Z\n\n\u{2014} \(Self.origin) "))
        #expect(try Checkpoint.open(note, verifier: signer.verifier, origin: Self.origin) == checkpoint)

        let other = try NoteSigner.generate(name: Self.origin)
        #expect(errorCode { _ = try Checkpoint.open(note, verifier: other.verifier, origin: Self.origin) } == .unverifiedNote)
        #expect(errorCode { _ = try Checkpoint.open(note, verifier: signer.verifier, origin: "cmk-vault.test/other") } == .originMismatch)
        // A witness's cosignature (another key) does not disturb the pinned one.
        let witness = try NoteSigner.generate(name: "witness.example/w1")
        let cosigned = try SignedNote(signing: checkpoint.text, with: [witness, signer]).serialized
        #expect(try Checkpoint.open(cosigned, verifier: signer.verifier, origin: Self.origin) == checkpoint)
        // The body changed after signing: size, root, origin, extension.
        for (from, to) in [("\n10\n", "\n11\n"), ("time 2025", "time 2026"), ("\(Self.origin)\n", "\(Self.origin)x\n")] {
            let altered = note.replacingOccurrences(of: from, with: to)
            #expect(errorCode { _ = try Checkpoint.open(altered, verifier: signer.verifier, origin: Self.origin) } == .badSignature)
        }
    }

    @Test("checkpoint bodies are parsed strictly", arguments: [
        ("size with a leading zero", "o\n010\n\(MerkleHash.emptyTree.base64)\n"),
        ("size with '+'", "o\n+10\n\(MerkleHash.emptyTree.base64)\n"),
        ("negative size", "o\n-1\n\(MerkleHash.emptyTree.base64)\n"),
        ("size with a space", "o\n 10\n\(MerkleHash.emptyTree.base64)\n"),
        ("size in hex", "o\n0x10\n\(MerkleHash.emptyTree.base64)\n"),
        ("size beyond 64 bits", "o\n18446744073709551616\n\(MerkleHash.emptyTree.base64)\n"),
        ("empty size", "o\n\n\(MerkleHash.emptyTree.base64)\n"),
        ("root without padding", "o\n10\n\(MerkleHash.emptyTree.base64.dropLast())\n"),
        ("root in base64url", "o\n10\n\(MerkleHash(hex: String(repeating: "fb", count: 32))!.base64.replacingOccurrences(of: "+", with: "-"))\n"),
        ("root of 31 bytes", "o\n10\n\(Data(repeating: 1, count: 31).base64EncodedString())\n"),
        ("root of 33 bytes", "o\n10\n\(Data(repeating: 1, count: 33).base64EncodedString())\n"),
        ("non-canonical root", "o\n10\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=\n"),
        ("root in hex", "o\n10\n\(MerkleHash.emptyTree.hex)\n"),
        ("empty origin", "\n10\n\(MerkleHash.emptyTree.base64)\n"),
        ("empty extension line", "o\n10\n\(MerkleHash.emptyTree.base64)\n\next\n"),
        ("two lines", "o\n10\n"),
        ("no final newline", "o\n10\n\(MerkleHash.emptyTree.base64)"),
    ])
    func strictBody(what: String, body: String) {
        #expect(errorCode { _ = try Checkpoint(text: body) } == .malformedCheckpoint, "\(what) was accepted")
    }

    @Test("the largest and smallest sizes parse")
    func sizes() throws {
        #expect(try Checkpoint(text: "o\n0\n\(MerkleHash.emptyTree.base64)\n").size == 0)
        #expect(try Checkpoint(text: "o\n18446744073709551615\n\(MerkleHash.emptyTree.base64)\n").size == .max)
        #expect(errorCode { _ = try Checkpoint(origin: "two\nlines", size: 1, rootHash: .emptyTree) } == .malformedCheckpoint)
        #expect(errorCode { _ = try Checkpoint(origin: "o", size: 1, rootHash: .emptyTree, extensionLines: [""]) } == .malformedCheckpoint)
    }
}
