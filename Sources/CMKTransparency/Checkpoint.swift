import Foundation

/// A transparency-log checkpoint (c2sp.org/tlog-checkpoint): the body of a signed note that
/// commits the log to its root at a size.
///
/// ```
/// <origin>
/// <tree size in plain decimal>
/// <root hash, canonical padded base64 of 32 bytes>
/// [extension lines, each non-empty]
/// ```
///
/// A log must never sign two checkpoints that no consistency proof links: a restored backup or
/// a fail-over continues the tree, it does not start another.
public struct Checkpoint: Hashable, Sendable {
    /// The log's identity, pinned by verifiers (for example `cmk-vault.example/tenant-id`).
    public let origin: String
    /// The number of leaves.
    public let size: UInt64
    /// The root hash at ``size``.
    public let rootHash: MerkleHash
    /// Opaque extension lines (c2sp discourages them: monitors cannot audit them).
    public let extensionLines: [String]

    /// A checkpoint; the origin and extension lines must be non-empty single lines without
    /// control characters.
    public init(origin: String, size: UInt64, rootHash: MerkleHash, extensionLines: [String] = []) throws {
        try Self.checkLine(origin, field: "origin")
        for (number, line) in extensionLines.enumerated() { try Self.checkLine(line, field: "extension line \(number + 1)") }
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
        self.extensionLines = extensionLines
    }

    /// Parses a checkpoint body (a note's text) strictly: plain decimal size (no sign, no
    /// leading zero but for "0"), canonical padded base64 root of exactly 32 bytes, no empty line.
    public init(text: String) throws {
        guard text.hasSuffix("\n") else {
            throw TransparencyError(.malformedCheckpoint, "the checkpoint body must end in a newline")
        }
        let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 3 else {
            throw TransparencyError(.malformedCheckpoint, "a checkpoint has at least 3 lines (origin, size, root); this one has \(lines.count)")
        }
        guard let size = Self.parseSize(lines[1]) else {
            throw TransparencyError(.malformedCheckpoint, "the checkpoint's size (line 2) must be plain decimal without sign or leading zeros, at most 2^64-1")
        }
        guard let root = MerkleHash(base64: lines[2]) else {
            throw TransparencyError(.malformedCheckpoint, "the checkpoint's root (line 3) must be canonical padded base64 of 32 bytes")
        }
        try self.init(origin: String(lines[0]), size: size, rootHash: root, extensionLines: lines.dropFirst(3).map(String.init))
    }

    /// The body: the signed text of the note.
    public var text: String {
        ([origin, String(size), rootHash.base64] + extensionLines).map { $0 + "\n" }.joined()
    }

    /// The signed note of this checkpoint, signed by `signer`.
    public func signedNote(by signer: NoteSigner) throws -> SignedNote {
        try SignedNote(signing: text, with: [signer])
    }

    /// Opens a serialized signed checkpoint: parses the note strictly, verifies it with the
    /// pinned key (other signatures ignored), parses the body and checks the pinned origin.
    public static func open(_ serialized: some Collection<UInt8>, verifier: NoteVerifier, origin: String) throws -> Checkpoint {
        let note = try SignedNote(parsing: serialized)
        try note.verify(with: verifier)
        let checkpoint = try Checkpoint(text: note.text)
        guard checkpoint.origin == origin else {
            throw TransparencyError(.originMismatch, "the checkpoint's origin is not the pinned origin \(origin)")
        }
        return checkpoint
    }

    /// Opens a serialized signed checkpoint from a string.
    public static func open(_ serialized: String, verifier: NoteVerifier, origin: String) throws -> Checkpoint {
        try open(Array(serialized.utf8), verifier: verifier, origin: origin)
    }

    private static func checkLine(_ line: String, field: String) throws {
        guard !line.isEmpty else { throw TransparencyError(.malformedCheckpoint, "the checkpoint's \(field) is empty") }
        guard !line.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw TransparencyError(.malformedCheckpoint, "the checkpoint's \(field) holds a newline or control character")
        }
    }

    private static func parseSize(_ text: Substring) -> UInt64? {
        let digits = text.utf8
        guard !digits.isEmpty, digits.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        guard digits.first != 0x30 || digits.count == 1 else { return nil }
        return UInt64(text)
    }
}
