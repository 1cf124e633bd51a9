import ArgumentParser
import CMKAudit
import CMKHost
import CMKTransparency
import Foundation

/// `cmkctl audit checkpoint|prove|consistency|log-key` and `audit verify --checkpoint`: the
/// security log as an RFC 9162 Merkle tree with C2SP checkpoints (docs/security-log.md), the
/// same format as the vault service's log, so one verifier checks both.
extension AuditCommand {
    struct CheckpointJSON: Encodable {
        var origin: String
        var size: UInt64
        var rootHash: String
        /// The signed note, as `audit checkpoint` prints it without --json.
        var checkpoint: String
        var verifierKey: String
    }

    struct CheckpointCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "checkpoint",
            abstract: "Print a signed checkpoint (C2SP tlog-checkpoint) of the security log at its current size.",
            discussion: """
                The checkpoint is a signed note: the origin (<hostname>/cmk-syncer), the number of records and the \
                RFC 9162 root hash of the log's lines, then a blank line and an Ed25519 signature line by the key in \
                security.log.key (made on first need, 0600; print it with `cmkctl audit log-key`). Keep a copy: \
                `cmkctl audit verify --checkpoint FILE` later shows the log only grew since. A log whose chain is broken \
                is not signed (exit 1, naming the record).
                """)
        @OptionGroup var options: GlobalOptions
        @Flag(help: "Print one JSON document (origin, size, rootHash, checkpoint, verifierKey).") var json = false

        func run() async throws {
            let log = try AuditCommand.log(options)
            let tree = try log.tree()
            try tree.requireIntactChain()
            let signer = try log.signingKeyCreatingIfNeeded()
            let checkpoint = try tree.checkpoint(origin: signer.name)
            let note = try checkpoint.signedNote(by: signer).serialized
            if json {
                return try Output.json(CheckpointJSON(origin: checkpoint.origin, size: checkpoint.size, rootHash: checkpoint.rootHash.base64,
                                                      checkpoint: note, verifierKey: signer.verifier.verifierKey))
            }
            Output.raw(note)
        }
    }

    struct InclusionJSON: Encodable {
        var index: UInt64
        var seq: UInt64
        var size: UInt64
        var rootHash: String
        /// Base64 of the record's line without its newline: the Merkle leaf.
        var leaf: String
        var leafHash: String
        var hashes: [String]
    }

    struct Prove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the RFC 9162 inclusion proof of one record in the security log's tree.",
            discussion: """
                --index is the 0-based leaf index, the record's seq minus 1. The proof is against the tree at --size \
                records (default: the current size), the size of a checkpoint you kept. Hashes are base64; the leaf is \
                the record's line without its newline, also in base64.
                """)
        @OptionGroup var options: GlobalOptions
        @Option(help: ArgumentHelp("The leaf index: the record's seq minus 1.", valueName: "i")) var index: UInt64
        @Option(help: ArgumentHelp("The tree size to prove against (default: the current size).", valueName: "n")) var size: UInt64?
        @Flag(help: "Print one JSON document (index, seq, size, rootHash, leaf, leafHash, hashes).") var json = false

        func run() async throws {
            let tree = try AuditCommand.log(options).tree(keepingLeaf: index)
            try tree.requireIntactChain()
            let size = size ?? tree.size
            let hashes = try tree.inclusionProof(index: index, size: size)
            let leaf = try tree.leaf(at: index)
            let proof = InclusionJSON(index: index, seq: index + 1, size: size, rootHash: try tree.rootHash(size: size).base64,
                                      leaf: Data(leaf).base64EncodedString(), leafHash: MerkleHash.leaf(leaf).base64,
                                      hashes: hashes.map(\.base64))
            if json { return try Output.json(proof) }
            Output.line("leaf \(proof.index) (seq \(proof.seq)) in tree size \(proof.size), root \(proof.rootHash)")
            Output.line("leaf \(proof.leaf)")
            for hash in proof.hashes { Output.line("hash \(hash)") }
        }
    }

    struct ConsistencyJSON: Encodable {
        var from: UInt64
        var to: UInt64
        var fromRoot: String
        var toRoot: String
        var hashes: [String]
    }

    struct Consistency: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the RFC 9162 consistency proof that the tree at --from records is a prefix of the tree at --to.",
            discussion: "Hashes are base64. --to defaults to the current size. A verifier holding a checkpoint of size --from checks it against a newer checkpoint with this proof.")
        @OptionGroup var options: GlobalOptions
        @Option(help: ArgumentHelp("The older tree size (a checkpoint you kept).", valueName: "m")) var from: UInt64
        @Option(help: ArgumentHelp("The newer tree size (default: the current size).", valueName: "n")) var to: UInt64?
        @Flag(help: "Print one JSON document (from, to, fromRoot, toRoot, hashes).") var json = false

        func run() async throws {
            let tree = try AuditCommand.log(options).tree()
            try tree.requireIntactChain()
            let to = to ?? tree.size
            let hashes = try tree.consistencyProof(from: from, to: to)
            let proof = ConsistencyJSON(from: from, to: to, fromRoot: try tree.rootHash(size: from).base64,
                                        toRoot: try tree.rootHash(size: to).base64, hashes: hashes.map(\.base64))
            if json { return try Output.json(proof) }
            Output.line("consistency \(proof.from) -> \(proof.to), roots \(proof.fromRoot) -> \(proof.toRoot)")
            for hash in proof.hashes { Output.line("hash \(hash)") }
        }
    }

    struct LogKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "log-key",
            abstract: "Print the security log's checkpoint verifier key and origin, to pin.",
            discussion: """
                The key (<origin>+<key id>+<base64 Ed25519 public key>, the C2SP signed-note verifier key format, as \
                `cmkctl vault log-key` prints the vault service's) is made on first need in security.log.key (0600) and \
                named <hostname>/cmk-syncer. Keep it where the host cannot change it: it is what proves a checkpoint \
                came from this host.
                """)
        @OptionGroup var options: GlobalOptions
        @Flag(help: "Print one JSON document (verifierKey, origin, keyId).") var json = false

        func run() async throws {
            let verifier = try AuditCommand.log(options).signingKeyCreatingIfNeeded().verifier
            if json {
                return try Output.json(VaultLogKeyCommand.KeyJSON(verifierKey: verifier.verifierKey, origin: verifier.name,
                                                                  keyId: String(format: "%08x", verifier.keyID)))
            }
            Output.line(verifier.verifierKey)
        }
    }

    /// `audit verify --checkpoint FILE`: the checkpoint's signature by the pinned key, then whether
    /// the log's first `size` lines still hash to its root. Returns the sentence to print when the
    /// log only grew; anything else is a failure sentence (`ok` false).
    static func checkAgainst(checkpointFile: String, pinnedKey: String?, log: SecurityLog, tree: SecurityLogTree) throws -> (ok: Bool, message: String) {
        let verifier: NoteVerifier
        if let pinnedKey {
            do { verifier = try NoteVerifier(verifierKey: pinnedKey) } catch let error as TransparencyError {
                throw CtlError("--key is not a verifier key <name>+<key id>+<key>: \(error.reason)", exitCode: CMKExitCode.usage)
            }
        } else if let signer = try log.signingKey() {
            verifier = signer.verifier
        } else {
            throw CtlError("there is no \(SecurityLog.signingKeyFileName) beside '\(log.path)' to check the checkpoint with: pass the key you pinned with --key")
        }
        guard let bytes = FileManager.default.contents(atPath: checkpointFile) else {
            throw CtlError("cannot read the checkpoint file '\(checkpointFile)'")
        }
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint.open(bytes, verifier: verifier, origin: verifier.name)
        } catch let error as TransparencyError {
            return (false, "checkpoint '\(checkpointFile)' is not a checkpoint signed by \(verifier.name)+\(String(format: "%08x", verifier.keyID)): \(error.reason)")
        }
        switch try tree.compare(with: checkpoint) {
        case .consistent:
            return (true, "checkpoint '\(checkpointFile)' (size \(checkpoint.size)) verified: the log's first \(checkpoint.size) records hash to its root; \(tree.size - checkpoint.size) record(s) appended since")
        case .truncated(let logSize):
            return (false, "TRUNCATED: checkpoint '\(checkpointFile)' commits to \(checkpoint.size) records but the log has \(logSize); records were removed")
        case .rewritten:
            return (false, "REWRITTEN: the log's first \(checkpoint.size) records do not hash to the root of checkpoint '\(checkpointFile)'; records were rewritten, reordered, removed or inserted")
        }
    }
}
