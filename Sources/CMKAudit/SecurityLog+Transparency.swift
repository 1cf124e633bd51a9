import CMKCore
import CMKTransparency
import Foundation
import Glibc

/// The security log as a transparency log (docs/security-log.md, "The Merkle tree"): the same
/// RFC 9162 tree and C2SP checkpoints as the vault service's log, so one verifier checks both.
///
/// Leaf `i` (0-based) is the exact bytes of line `i + 1` of `security.log` without its newline,
/// that is the record with `seq = i + 1`; its leaf hash is `SHA-256(0x00 ‖ line)`. The file
/// format and the hash chain are unchanged: the tree is computed from the file on each use.
extension SecurityLog {
    /// The checkpoint key's file name in the state directory (the log's path plus `.key`).
    public static let signingKeyFileName = fileName + ".key"

    /// The checkpoint key file: `<log>.key`, mode 0600.
    public var signingKeyPath: String { path + ".key" }

    /// The origin a new checkpoint key is named after: `<hostname>/cmk-syncer`. The key keeps
    /// its name when the host is renamed later (customers pinned it).
    public static func hostOrigin() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let name = gethostname(&buffer, buffer.count - 1) == 0 ? String(cString: buffer) : ""
        let cleaned = name.unicodeScalars.filter { !$0.properties.isWhitespace && $0 != "+" && $0.value >= 0x21 && $0.value != 0x7F }
        return (cleaned.isEmpty ? "localhost" : String(String.UnicodeScalarView(cleaned))) + "/cmk-syncer"
    }

    /// The checkpoint key, or nil when none was made yet. Its name is the log's origin.
    public func signingKey() throws(AuditError) -> NoteSigner? {
        do throws(SignerKeyFile.Failure) {
            return try SignerKeyFile.load(path: signingKeyPath, rule: .credentialFile, what: "security-log checkpoint key")
        } catch {
            throw Self.auditError(error)
        }
    }

    /// The checkpoint key, made on first need (an Ed25519 key named ``hostOrigin()``, 0600). When
    /// root makes it (`sudo cmkctl …`), it is handed to the state directory's owner, as the log is.
    public func signingKeyCreatingIfNeeded() throws(AuditError) -> NoteSigner {
        let result: (signer: NoteSigner, created: Bool)
        do throws(SignerKeyFile.Failure) {
            result = try SignerKeyFile.loadOrCreate(path: signingKeyPath, name: nil, defaultName: Self.hostOrigin(),
                                                    rule: .credentialFile, what: "security-log checkpoint key")
        } catch {
            throw Self.auditError(error)
        }
        if result.created, geteuid() == 0, let directory = try? SystemFile.status(SystemFile.directory(of: signingKeyPath)),
           directory.st_uid != 0, chown(signingKeyPath, directory.st_uid, directory.st_gid) != 0 {
            throw LogFile.error("chown", signingKeyPath)
        }
        return result.signer
    }

    private static func auditError(_ failure: SignerKeyFile.Failure) -> AuditError {
        switch failure.kind {
        case .permissions: return AuditError(.permissions, failure.detail)
        case .io: return AuditError(.io, failure.detail)
        case .corrupt, .nameMismatch: return AuditError(.corrupt, failure.detail)
        }
    }

    /// Reads the whole log once: checks the chain as ``verify()`` does and builds the Merkle tree
    /// over every newline-terminated line (a torn last line is not a leaf). `keepingLeaf` keeps
    /// the bytes of that leaf for ``SecurityLogTree/leaf(at:)``.
    public func tree(keepingLeaf: UInt64? = nil) throws(AuditError) -> SecurityLogTree {
        var tree = MerkleTree<InMemoryMerkleHashStore>()
        var count: UInt64 = 0
        var kept: [UInt8]?
        let verification = try verify { line in
            // An in-memory store cannot fail.
            _ = try? tree.append(leafHash: MerkleHash.leaf(line))
            if count == keepingLeaf { kept = Array(line) }
            count += 1
        }
        return SecurityLogTree(path: path, verification: verification, tree: tree, size: count,
                               keptLeaf: kept.map { (keepingLeaf!, $0) })
    }
}

/// The security log's Merkle tree at one moment, with the chain's verdict from the same read.
public struct SecurityLogTree: Sendable {
    /// The log file.
    public let path: String
    /// The hash chain's verdict (as `cmkctl audit verify` prints it).
    public let verification: VerificationResult
    private let tree: MerkleTree<InMemoryMerkleHashStore>
    /// The number of leaves: the log's newline-terminated lines.
    public let size: UInt64
    private let keptLeaf: (index: UInt64, bytes: [UInt8])?

    init(path: String, verification: VerificationResult, tree: MerkleTree<InMemoryMerkleHashStore>, size: UInt64,
         keptLeaf: (index: UInt64, bytes: [UInt8])?) {
        self.path = path
        self.verification = verification
        self.tree = tree
        self.size = size
        self.keptLeaf = keptLeaf
    }

    /// Throws unless the chain holds over every leaf: a log is not signed or proved while a
    /// record is broken (`.corrupt`, naming it) or while it has vanished (`.missing`).
    public func requireIntactChain() throws(AuditError) {
        switch verification.outcome {
        case .intact, .tornTail: return
        case .broken(let broken):
            throw AuditError(.corrupt, "security log '\(path)' is broken at \(broken); no checkpoint or proof is made for it: run 'cmkctl audit verify'")
        case .vanished(let vanished):
            throw AuditError(.missing, "security log '\(path)': \(vanished); restore it from a backup")
        }
    }

    /// The root hash at `size` leaves (the current size when nil).
    public func rootHash(size: UInt64? = nil) throws(AuditError) -> MerkleHash {
        let size = size ?? self.size
        return try call { try tree.rootHash(size: size) }
    }

    /// The RFC 9162 inclusion proof of leaf `index` in the tree at `size` leaves.
    public func inclusionProof(index: UInt64, size: UInt64) throws(AuditError) -> [MerkleHash] {
        try call { try tree.inclusionProof(index: index, size: size) }
    }

    /// The RFC 9162 consistency proof from the tree at `from` leaves to the tree at `to`.
    public func consistencyProof(from: UInt64, to: UInt64) throws(AuditError) -> [MerkleHash] {
        try call { try tree.consistencyProof(from: from, to: to) }
    }

    /// The bytes of leaf `index` (the line without its newline), if ``SecurityLog/tree(keepingLeaf:)``
    /// kept it.
    public func leaf(at index: UInt64) throws(AuditError) -> [UInt8] {
        guard index < size else { throw outOfRange("leaf index \(index) is not below the log's size \(size)") }
        guard let keptLeaf, keptLeaf.index == index else {
            throw AuditError(.outOfRange, "leaf \(index) of security log '\(path)' was not kept when the tree was read")
        }
        return keptLeaf.bytes
    }

    /// The checkpoint of the tree at its current size, for the log named `origin`.
    public func checkpoint(origin: String) throws(AuditError) -> Checkpoint {
        let root = try rootHash()
        do {
            return try Checkpoint(origin: origin, size: size, rootHash: root)
        } catch {
            throw AuditError(.invalidEntry, "the checkpoint origin '\(origin)' is not a single non-empty line")
        }
    }

    /// How the log relates to an earlier checkpoint.
    public enum CheckpointComparison: Sendable, Hashable {
        /// The tree at the checkpoint's size has the checkpoint's root: the log only grew.
        case consistent
        /// The log has fewer leaves than the checkpoint committed to.
        case truncated(logSize: UInt64)
        /// The first `size` leaves do not hash to the checkpoint's root: records were rewritten,
        /// reordered, removed or inserted.
        case rewritten
    }

    /// Compares the log with a checkpoint whose signature and origin the caller verified.
    public func compare(with checkpoint: Checkpoint) throws(AuditError) -> CheckpointComparison {
        guard checkpoint.size <= size else { return .truncated(logSize: size) }
        return try rootHash(size: checkpoint.size) == checkpoint.rootHash ? .consistent : .rewritten
    }

    private func outOfRange(_ reason: String) -> AuditError {
        AuditError(.outOfRange, "security log '\(path)': \(reason)")
    }

    private func call<T>(_ body: () throws -> T) throws(AuditError) -> T {
        do {
            return try body()
        } catch let error as TransparencyError where error.code == .outOfRange || error.code == .malformedProof {
            throw outOfRange(error.reason)
        } catch {
            throw AuditError(.io, "computing the Merkle tree of security log '\(path)' failed", underlying: error)
        }
    }
}
