import Foundation
import Testing

@testable import CMKTransparency

/// Signed notes and keys against the published examples: golang.org/x/mod/sumdb/note's
/// note_test.go (github.com/golang/mod at fe2ec04: the PeterNeumann and EnochRoot keys, the signed
/// note and the malformed notes of TestOpen) and c2sp.org/signed-note (github.com/C2SP/C2SP at
/// 5ba5ee8: the example.com/foo verifier key and note).
@Suite("Signed notes and note keys")
struct SignedNoteTests {
    static let peterSignerKey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    static let peterVerifierKey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    static let enochVerifierKey = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
    static let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    static let peterSignature = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    static let enochSignature = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

    @Test("the PeterNeumann signer key signs the published note byte for byte")
    func peterNeumann() throws {
        let signer = try NoteSigner(signerKey: Self.peterSignerKey)
        #expect(signer.name == "PeterNeumann")
        #expect(signer.keyID == 0xc74f_20a3)
        #expect(signer.verifier.verifierKey == Self.peterVerifierKey)
        #expect(signer.signerKey == Self.peterSignerKey)
        #expect(!signer.description.contains("AYEKFALV"), "the description must not show the key")
        let note = try SignedNote(signing: Self.text, with: [signer])
        // Ed25519 (RFC 8032) is deterministic: the same key and text give the same signature.
        #expect(note.serialized == Self.text + "\n" + Self.peterSignature)
        let verifier = try NoteVerifier(verifierKey: Self.peterVerifierKey)
        try SignedNote(parsing: note.serialized).verify(with: verifier)
    }

    @Test("a note with PeterNeumann's and EnochRoot's signatures opens with either key")
    func twoSignatures() throws {
        let note = try SignedNote(parsing: Self.text + "\n" + Self.peterSignature + Self.enochSignature)
        #expect(note.text == Self.text)
        #expect(note.signatures.map(\.name) == ["PeterNeumann", "EnochRoot"])
        #expect(note.signatures.map(\.keyID) == [0xc74f_20a3, 0xaf0c_fe78])
        try note.verify(with: NoteVerifier(verifierKey: Self.peterVerifierKey))
        try note.verify(with: NoteVerifier(verifierKey: Self.enochVerifierKey))
        // A note signed only by keys we do not pin is refused.
        let enochOnly = try SignedNote(parsing: Self.text + "\n" + Self.enochSignature)
        #expect(errorCode { try enochOnly.verify(with: NoteVerifier(verifierKey: Self.peterVerifierKey)) } == .unverifiedNote)
    }

    @Test("the c2sp.org/signed-note example verifies with its verifier key")
    func c2spExample() throws {
        let verifier = try NoteVerifier(verifierKey: "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
        #expect(verifier.keyID == 0x530d_903a)
        let note = try SignedNote(parsing: "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")
        #expect(note.text == "This is an example message.\n")
        try note.verify(with: verifier)
    }

    @Test("a signature by the pinned key that does not verify rejects the whole note; unknown ones are ignored")
    func badAndUnknownSignatures() throws {
        let peter = try NoteVerifier(verifierKey: Self.peterVerifierKey)
        let sig = Self.peterSignature
        let cut = sig.index(sig.startIndex, offsetBy: 60)
        let lengthened = String(sig[..<cut]) + "ABCD" + String(sig[cut...])
        #expect(errorCode { try SignedNote(parsing: Self.text + "\n" + lengthened).verify(with: peter) } == .badSignature)
        // The pinned name with another key ID, and another name with the pinned key ID, are unknown keys.
        let otherID = sig.replacingOccurrences(of: "x08g", with: "xxxx")
        #expect(errorCode { try SignedNote(parsing: Self.text + "\n" + otherID).verify(with: peter) } == .unverifiedNote)
        let otherName = sig.replacingOccurrences(of: "PeterNeumann", with: "CarmenSandiego")
        #expect(errorCode { try SignedNote(parsing: Self.text + "\n" + otherName).verify(with: peter) } == .unverifiedNote)
        try SignedNote(parsing: Self.text + "\n" + otherID + otherName + Self.enochSignature + sig).verify(with: peter)
        // The signed message is the text with its final newline, not the blank line after it.
        let signer = try NoteSigner(signerKey: Self.peterSignerKey)
        let wrongMessage = try signer.signature(for: Array((Self.text + "\n").utf8))
        let line = SignedNote.Signature(name: signer.name, keyID: signer.keyID, signature: wrongMessage).line
        #expect(errorCode { try SignedNote(parsing: Self.text + "\n" + line + "\n").verify(with: peter) } == .badSignature)
    }

    @Test("malformed notes are refused (TestOpen's bad messages, sizes, dashes)")
    func malformedNotes() throws {
        let sig = Self.peterSignature
        let bad: [(String, [UInt8])] = [
            ("text only", Array(Self.text.utf8)),
            ("blank line, no signature", Array((Self.text + "\n").utf8)),
            ("signature without final newline", Array((Self.text + "\n" + sig.dropLast()).utf8)),
            ("control character", [0x01] + Array((Self.text + "\n" + sig).utf8)),
            ("invalid UTF-8", [0xFF] + Array((Self.text + "\n" + sig).utf8)),
            ("key name with a space", Array((Self.text + "\n" + "\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=").utf8)),
            ("line after the signatures", Array((Self.text + "\n" + sig + "Unexpected line.\n").utf8)),
            ("hyphen instead of em dash", Array((Self.text + "\n" + sig.replacingOccurrences(of: "\u{2014}", with: "-")).utf8)),
            ("en dash instead of em dash", Array((Self.text + "\n" + sig.replacingOccurrences(of: "\u{2014}", with: "\u{2013}")).utf8)),
            ("carriage return", Array((Self.text + "\n" + sig.replacingOccurrences(of: "\n", with: "\r\n")).utf8)),
            ("101 signature lines", Array((Self.text + "\n" + String(repeating: sig, count: 101)).utf8)),
            ("key name with '+'", Array((Self.text + "\n" + sig.replacingOccurrences(of: "PeterNeumann", with: "Peter+Neumann")).utf8)),
            ("non-canonical base64", Array((Self.text + "\n" + sig.replacingOccurrences(of: "AM=\n", with: "AN=\n")).utf8)),
            ("signature of 4 bytes", Array((Self.text + "\n" + "\u{2014} PeterNeumann x08gow==\n").utf8)),
            ("more than 1 MiB", Array((String(repeating: "a", count: SignedNote.maximumSize) + "\n\n" + sig).utf8)),
        ]
        for (what, note) in bad {
            #expect(errorCode { _ = try SignedNote(parsing: note) } == .malformedNote, "\(what) was accepted")
        }
        // 100 signature lines are still accepted.
        try SignedNote(parsing: Self.text + "\n" + String(repeating: sig, count: 100)).verify(with: NoteVerifier(verifierKey: Self.peterVerifierKey))
        // The text may hold blank lines: the signatures start after the last one.
        let signer = try NoteSigner(signerKey: Self.peterSignerKey)
        let blank = try SignedNote(signing: "one\n\ntwo\n", with: [signer])
        #expect(try SignedNote(parsing: blank.serialized).text == "one\n\ntwo\n")
    }

    @Test("verifier keys: the published ones parse; every substring and every changed byte is refused")
    func verifierKeyManglings() throws {
        #expect(try NoteVerifier(verifierKey: Self.peterVerifierKey).verifierKey == Self.peterVerifierKey)
        let key = Array(Self.peterVerifierKey.utf8)
        for start in 0...key.count {
            for end in (start + 1)..<(key.count + 1) where !(start == 0 && end == key.count) {
                let text = String(decoding: key[start..<end], as: UTF8.self)
                #expect(errorCode { _ = try NoteVerifier(verifierKey: text) } == .malformedKey, "\(text) was accepted")
            }
        }
        for index in key.indices {
            var changed = key
            changed[index] &+= 1
            let text = String(decoding: changed, as: UTF8.self)
            #expect(errorCode { _ = try NoteVerifier(verifierKey: text) } == .malformedKey, "\(text) was accepted")
        }
        // Go's note_test.go: a wrong-length key and an unknown algorithm, each with a matching key ID.
        #expect(errorCode { _ = try NoteVerifier(verifierKey: "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==") } == .malformedKey)
        #expect(errorCode { _ = try NoteVerifier(verifierKey: "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW") } == .malformedKey)
        // Upper-case hex is not the canonical form.
        #expect(errorCode { _ = try NoteVerifier(verifierKey: "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW") } == .malformedKey)
    }

    @Test("a key whose base64 holds '+' splits on the first two '+' only")
    func plusInBase64() throws {
        // EnochRoot's signature holds '+'; find a generated key whose verifier key does too.
        var found = 0
        for _ in 0..<200 where found < 3 {
            let signer = try NoteSigner.generate(name: "example.com/log")
            let text = signer.verifier.verifierKey
            guard text.split(separator: "+").count > 3 else { continue }
            found += 1
            #expect(try NoteVerifier(verifierKey: text) == signer.verifier)
            #expect(try NoteSigner(signerKey: signer.signerKey).verifier == signer.verifier)
        }
        #expect(found == 3, "200 random keys should give three with '+' in their base64")
    }

    @Test("signer keys: every substring and every changed byte is refused")
    func signerKeyManglings() throws {
        let key = Array(Self.peterSignerKey.utf8)
        for start in 0...key.count {
            for end in (start + 1)..<(key.count + 1) where !(start == 0 && end == key.count) {
                let text = String(decoding: key[start..<end], as: UTF8.self)
                let code = errorCode { _ = try NoteSigner(signerKey: text) }
                #expect(code == .malformedKey, "a substring of the signer key was accepted (\(start)..<\(end))")
            }
        }
        for index in key.indices {
            var changed = key
            changed[index] &+= 1
            let code = errorCode { _ = try NoteSigner(signerKey: String(decoding: changed, as: UTF8.self)) }
            #expect(code == .malformedKey, "the signer key with byte \(index) changed was accepted")
        }
    }

    @Test("names with spaces, '+', newlines or nothing are refused")
    func names() throws {
        for name in ["", "a b", "a+b", "a\nb", "a\u{00A0}b", "a\tb"] {
            #expect(errorCode { _ = try NoteSigner.generate(name: name) } == .malformedKey, "\(name.debugDescription) was accepted")
        }
    }
}
