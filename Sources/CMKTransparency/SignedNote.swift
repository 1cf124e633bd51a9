import Foundation

/// A signed note (c2sp.org/signed-note): a text ending in a newline, a blank line, then one or
/// more signature lines `— <key name> <base64(key ID ‖ signature)>`.
///
/// The signed message is the text including its final newline, not the blank line. Parsing is
/// strict (valid UTF-8, no control character but newline, at most ``maximumSize`` bytes and
/// ``maximumSignatures`` signature lines); opening with a pinned key ignores signatures by other
/// keys and requires one by the pinned key that verifies.
public struct SignedNote: Hashable, Sendable {
    /// One signature line.
    public struct Signature: Hashable, Sendable {
        /// The key name on the line.
        public let name: String
        /// The key ID, the first four bytes of the decoded signature.
        public let keyID: UInt32
        /// The signature bytes after the key ID.
        public let signature: [UInt8]

        /// The line without its newline: `— <name> <base64(keyID ‖ signature)>`.
        public var line: String {
            let bytes = withUnsafeBytes(of: keyID.bigEndian) { Array($0) } + signature
            return "\(SignedNote.dash)\(name) \(Data(bytes).base64EncodedString())"
        }
    }

    /// The largest note accepted, in bytes (1 MiB).
    public static let maximumSize = 1 << 20
    /// The most signature lines accepted (the spec asks verifiers to accept at least 16).
    public static let maximumSignatures = 100
    /// U+2014 EM DASH and a space: how every signature line begins.
    static let dash = "\u{2014} "

    /// The signed text, ending in a newline.
    public let text: String
    /// The signature lines, in order.
    public let signatures: [Signature]

    /// Signs `text` (which must end in a newline) with `signers`, in order.
    public init(signing text: String, with signers: [NoteSigner]) throws {
        guard text.hasSuffix("\n") else {
            throw TransparencyError(.malformedNote, "a note's text must end in a newline")
        }
        try Self.checkCharacters(Array(text.utf8))
        guard !signers.isEmpty else { throw TransparencyError(.malformedNote, "a signed note needs at least one signer") }
        self.text = text
        self.signatures = try signers.map { signer in
            Signature(name: signer.name, keyID: signer.keyID, signature: try signer.signature(for: Array(text.utf8)))
        }
    }

    /// Parses a serialized note strictly; signatures are not checked (see ``verify(with:)``).
    public init(parsing serialized: some Collection<UInt8>) throws {
        let bytes = Array(serialized)
        guard bytes.count <= Self.maximumSize else {
            throw TransparencyError(.malformedNote, "the note has \(bytes.count) bytes; at most \(Self.maximumSize) are accepted")
        }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw TransparencyError(.malformedNote, "the note is not valid UTF-8")
        }
        try Self.checkCharacters(bytes)
        // The text ends at the last blank line: the text's final newline, then the blank line.
        guard let split = Self.lastBlankLine(in: bytes) else {
            throw TransparencyError(.malformedNote, "the note has no blank line before its signatures")
        }
        let text = bytes[..<(split + 1)], signatureBlock = bytes[(split + 2)...]
        guard !signatureBlock.isEmpty, signatureBlock.last == 0x0A else {
            throw TransparencyError(.malformedNote, "the note's signature lines must be present and end in a newline")
        }
        let lines = signatureBlock.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false)
        guard lines.count <= Self.maximumSignatures else {
            throw TransparencyError(.malformedNote, "the note has \(lines.count) signature lines; at most \(Self.maximumSignatures) are accepted")
        }
        self.text = String(decoding: text, as: UTF8.self)
        self.signatures = try lines.enumerated().map { number, line in try Self.parseSignature(line, number: number + 1) }
    }

    /// Parses a serialized note from a string.
    public init(parsing serialized: String) throws {
        try self.init(parsing: Array(serialized.utf8))
    }

    /// The note as sent: text, blank line, signature lines.
    public var serialized: String {
        text + "\n" + signatures.map { $0.line + "\n" }.joined()
    }

    /// Checks the note against a pinned key: signatures by other keys (another name or key ID)
    /// are ignored; every signature by the pinned key must verify, and there must be one.
    public func verify(with verifier: NoteVerifier) throws {
        let pinned = signatures.filter { $0.name == verifier.name && $0.keyID == verifier.keyID }
        guard !pinned.isEmpty else {
            throw TransparencyError(.unverifiedNote, "the note has no signature by the pinned key \(verifier.name)+\(NoteVerifier.hex(verifier.keyID))")
        }
        let message = Array(text.utf8)
        for signature in pinned where !verifier.isValidSignature(signature.signature, for: message) {
            throw TransparencyError(.badSignature, "the signature by \(verifier.name)+\(NoteVerifier.hex(verifier.keyID)) does not verify")
        }
    }

    // MARK: Parsing

    private static func checkCharacters(_ bytes: [UInt8]) throws {
        if let index = bytes.firstIndex(where: { $0 < 0x20 && $0 != 0x0A }) {
            throw TransparencyError(.malformedNote, "the note holds a control character at byte \(index)")
        }
    }

    private static func lastBlankLine(in bytes: [UInt8]) -> Int? {
        var index = bytes.count - 2
        while index >= 0 {
            if bytes[index] == 0x0A && bytes[index + 1] == 0x0A { return index }
            index -= 1
        }
        return nil
    }

    private static func parseSignature(_ line: ArraySlice<UInt8>, number: Int) throws -> Signature {
        let prefix = Array(dash.utf8)
        guard line.starts(with: prefix) else {
            throw TransparencyError(.malformedNote, "signature line \(number) does not start with an em dash (U+2014) and a space")
        }
        let rest = line.dropFirst(prefix.count)
        guard let space = rest.firstIndex(of: 0x20) else {
            throw TransparencyError(.malformedNote, "signature line \(number) has no space between key name and signature")
        }
        let name = String(decoding: rest[..<space], as: UTF8.self)
        do {
            try NoteVerifier.checkName(name, field: "key name on signature line \(number)")
        } catch let error as TransparencyError {
            throw TransparencyError(.malformedNote, error.reason)
        }
        let encoded = String(decoding: rest[(space + 1)...], as: UTF8.self)
        guard let decoded = NoteVerifier.canonicalBase64(encoded[...]), decoded.count >= 5 else {
            throw TransparencyError(.malformedNote, "signature line \(number) does not end in canonical base64 of a key ID and a signature")
        }
        return Signature(name: name, keyID: decoded.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }, signature: Array(decoded.dropFirst(4)))
    }
}
