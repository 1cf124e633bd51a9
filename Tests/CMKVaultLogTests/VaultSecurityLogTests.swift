import CMKTransparency
import CMKVaultLog
import Foundation
import GRDB
import Testing

/// The SQLite security log against CMKTransparency's in-memory tree, on real files.
@Suite struct VaultSecurityLogTests {
    static let origin = "vault.example/cmk-vault/3f2a1c4e-0000-4000-8000-000000000001"

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "cmk-vault-log-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return path
    }

    static func event(_ number: Int) -> SecurityLogEvent {
        SecurityLogEvent(operation: number % 3 == 0 ? "authentication-failed" : "token-issued", actor: "client-\(number % 4)",
                         role: number % 2 == 0 ? "administrator" : nil, address: "127.0.0.\(number % 250 + 1)",
                         details: ["n": String(number), "reason": "wrong-secret/é\u{1}\"quote"])
    }

    /// Every leaf, in index order, as served.
    static func allLeaves(_ log: VaultSecurityLog) throws -> [Data] {
        var leaves: [Data] = [], start: UInt64 = 0
        while true {
            let page = try log.records(.init(startIndex: start, limit: 7))
            leaves += page.leaves.map(\.leaf)
            guard let next = page.nextIndex else { return leaves }
            start = next
        }
    }

    @Test("append and prove: roots, inclusion and consistency proofs equal the in-memory tree's at every size")
    func roundTrip() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try VaultSecurityLog(stateDirectory: directory, origin: Self.origin)
        var memory = MerkleTree()
        for number in 0..<37 {
            let record = try await log.append(Self.event(number), at: Date(timeIntervalSince1970: 1_800_000_000 + Double(number)))
            #expect(record.index == UInt64(number))
            try memory.append(record: try record.canonicalJSON())
        }
        let leaves = try Self.allLeaves(log)
        #expect(leaves.count == 37)
        for (index, leaf) in leaves.enumerated() {
            let record = try SecurityLogRecord(leaf: leaf)
            #expect(record.index == UInt64(index))
            #expect(try record.canonicalJSON() == leaf, "the served leaf is the canonical encoding of its record")
            #expect(MerkleHash.leaf(leaf) == (try memory.leafHash(at: UInt64(index))))
        }
        #expect(String(decoding: leaves[0], as: UTF8.self).hasPrefix("{\"actor\":\"client-0\",\"address\":\"127.0.0.1\",\"details\":{"))
        #expect(!String(decoding: leaves[0], as: UTF8.self).contains(" "))
        for size in UInt64(0)...37 {
            #expect(try log.rootHash(size: size) == (try memory.rootHash(size: size)))
            for index in stride(from: UInt64(0), to: size, by: 5) {
                #expect(try log.inclusionProof(index: index, size: size) == (try memory.inclusionProof(index: index, size: size)))
            }
            for old in stride(from: UInt64(0), through: size, by: 4) {
                let proof = try log.consistencyProof(from: old, to: size)
                #expect(proof == (try memory.consistencyProof(from: old, to: size)))
                try MerkleProof.verifyConsistency(oldSize: old, oldRoot: try memory.rootHash(size: old), newSize: size,
                                                  newRoot: try memory.rootHash(size: size), proof: proof)
            }
        }
        #expect(throws: VaultLogError.self) { try log.inclusionProof(index: 37, size: 37) }
        #expect(throws: VaultLogError.self) { try log.inclusionProof(index: 0, size: 38) }
        #expect(throws: VaultLogError.self) { try log.consistencyProof(from: 5, to: 4) }
        #expect(throws: VaultLogError.self) { try log.consistencyProof(from: 1, to: 38) }

        let checkpoint = try log.checkpoint()
        let opened = try Checkpoint.open(checkpoint.note, verifier: log.verifier, origin: Self.origin)
        #expect(opened.size == 37)
        #expect(opened.rootHash == (try memory.rootHash()))
        #expect(opened.extensionLines.isEmpty)
        #expect(try log.checkpoint() == checkpoint, "cached while the size is unchanged")
    }

    @Test("files are 0600; reopening keeps records, key and checkpoint, and appends continue")
    func reopen() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var first: VaultSecurityLog? = try VaultSecurityLog(stateDirectory: directory, origin: Self.origin)
        for number in 0..<5 { try await first!.append(Self.event(number)) }
        let checkpoint = try first!.checkpoint()
        let key = first!.verifier.verifierKey
        first = nil
        for file in [VaultSecurityLog.fileName, LogSigningKey.fileName] {
            let mode = try FileManager.default.attributesOfItem(atPath: directory + "/" + file)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file)")
        }
        let second = try VaultSecurityLog(stateDirectory: directory, origin: Self.origin)
        #expect(second.verifier.verifierKey == key)
        #expect(try second.size() == 5)
        #expect(try second.checkpoint() == checkpoint)
        try await second.append(Self.event(5))
        let later = try second.checkpoint()
        #expect(later.size == 6)
        let proof = try second.consistencyProof(from: 5, to: 6)
        try MerkleProof.verifyConsistency(oldSize: 5, oldRoot: checkpoint.rootHash, newSize: 6, newRoot: later.rootHash, proof: proof)
        #expect(throws: VaultLogError.self) { try VaultSecurityLog(stateDirectory: directory, origin: "other.example/cmk-vault/x") }
    }

    @Test("a tree shorter than the last signed checkpoint, or rewritten under it, is refused at open")
    func shortenedTreeRefused() async throws {
        for damage in ["truncate", "rewrite"] {
            let directory = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var log: VaultSecurityLog? = try VaultSecurityLog(stateDirectory: directory, origin: Self.origin)
            for number in 0..<12 { try await log!.append(Self.event(number)) }
            _ = try log!.checkpoint()
            try await log!.append(Self.event(12))
            log = nil
            let queue = try DatabaseQueue(path: directory + "/" + VaultSecurityLog.fileName)
            try await queue.write { db in
                if damage == "truncate" {
                    // Leaves 8 and later gone, with every node that covers them: a consistent but shorter tree.
                    try db.execute(sql: "DELETE FROM records WHERE idx >= 8")
                    try db.execute(sql: "DELETE FROM nodes WHERE ((idx + 1) << level) > 8")
                } else {
                    // Every hash recomputed over a rewritten record 3: a consistent tree with another root.
                    let leaf = Data(#"{"address":"10.0.0.1","details":{},"index":3,"operation":"nothing","time":"2026-01-01T00:00:00.000Z"}"#.utf8)
                    try db.execute(sql: "UPDATE records SET leaf = ? WHERE idx = 3", arguments: [leaf])
                    let leaves = try Data.fetchAll(db, sql: "SELECT leaf FROM records ORDER BY idx")
                    try db.execute(sql: "DELETE FROM nodes")
                    var tree = MerkleTree()
                    for leaf in leaves { try tree.append(record: leaf) }
                    for level in 0..<5 {
                        var index: UInt64 = 0
                        while let hash = tree.store.subtreeHash(level: level, index: index) {
                            try db.execute(sql: "INSERT INTO nodes VALUES (?, ?, ?)", arguments: [level, Int64(index), Data(hash.bytes)])
                            index += 1
                        }
                    }
                }
            }
            try queue.close()
            let error = #expect(throws: VaultLogError.self) { try VaultSecurityLog(stateDirectory: directory, origin: Self.origin) }
            #expect(error?.code == .rolledBack, "\(damage)")
            #expect(error?.detail.contains("does not start") == true, "\(damage)")
        }
    }

    @Test("concurrent appends from many tasks: every index once, the tree equals one built in index order")
    func concurrentAppends() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try VaultSecurityLog(stateDirectory: directory, origin: Self.origin)
        let indices = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for task in 0..<8 {
                group.addTask {
                    var mine: [UInt64] = []
                    for number in 0..<40 {
                        mine.append(try await log.append(Self.event(task * 100 + number)).index)
                        if number % 10 == 0 { _ = try log.checkpoint() }
                    }
                    return mine
                }
            }
            return try await group.reduce(into: [UInt64]()) { $0 += $1 }
        }
        #expect(indices.sorted() == Array(0..<320))
        var memory = MerkleTree()
        for leaf in try Self.allLeaves(log) { try memory.append(record: leaf) }
        #expect(try log.size() == 320)
        #expect(try log.checkpoint().rootHash == (try memory.rootHash()))
    }

    @Test("group commit: 64 appends queued behind a held write lock commit in at most 3 transactions, at 64 consecutive indices, each caller with its own record, and the tree is the one built in index order")
    func groupCommit() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try VaultSecurityLog(stateDirectory: directory, origin: Self.origin)
        try await log.append(Self.event(1000))
        let before = log.appendTransactions
        // Another connection holds the write lock, so the appends queue up behind the committer's
        // first transaction (which waits for the lock) and must share the next one.
        let holder = try DatabaseQueue(path: log.path)
        let locked = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            try? holder.inDatabase { db in
                try db.execute(sql: "BEGIN IMMEDIATE")
                locked.signal()
                release.wait()
                try db.execute(sql: "COMMIT")
            }
            locked.signal()
        }
        locked.wait()
        let count = 64
        async let appended = withThrowingTaskGroup(of: (Int, SecurityLogRecord).self) { group in
            for number in 0..<count {
                group.addTask { (number, try await log.append(Self.event(number))) }
            }
            return try await group.reduce(into: [(Int, SecurityLogRecord)]()) { $0.append($1) }
        }
        try await Task.sleep(for: .milliseconds(500))
        release.signal()
        let results = try await appended
        locked.wait()
        try holder.close()

        let transactions = log.appendTransactions - before
        #expect(transactions <= 3, "\(count) appends arriving together took \(transactions) transactions")
        #expect(results.map(\.1.index).sorted() == Array(1...UInt64(count)), "consecutive indices after the first record")
        for (number, record) in results {
            #expect(record.details["n"] == String(number), "each caller gets its own record")
        }
        let leaves = try Self.allLeaves(log)
        #expect(leaves.count == count + 1)
        var memory = MerkleTree()
        for (index, leaf) in leaves.enumerated() {
            #expect(try SecurityLogRecord(leaf: leaf).index == UInt64(index))
            try memory.append(record: leaf)
        }
        #expect(try log.rootHash(size: UInt64(count + 1)) == (try memory.rootHash()))
        let proof = try log.consistencyProof(from: 1, to: UInt64(count + 1))
        try MerkleProof.verifyConsistency(oldSize: 1, oldRoot: try memory.rootHash(size: 1), newSize: UInt64(count + 1),
                                          newRoot: try memory.rootHash(), proof: proof)
        // The log reopens consistent.
        let reopened = try VaultSecurityLog(stateDirectory: directory, origin: Self.origin)
        #expect(try reopened.size() == UInt64(count + 1))
    }

    @Test("filters and paging: time range, actor, operation; nextIndex continues after the last record")
    func filters() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try VaultSecurityLog(stateDirectory: directory, origin: Self.origin)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for number in 0..<20 { try await log.append(Self.event(number), at: start + Double(number)) }
        let failed = try log.records(.init(operation: "authentication-failed", limit: 100)).leaves.map(\.index)
        #expect(failed == [0, 3, 6, 9, 12, 15, 18])
        let actor = try log.records(.init(actor: "client-1", limit: 2))
        #expect(actor.leaves.map(\.index) == [1, 5])
        #expect(actor.nextIndex == 6)
        #expect(try log.records(.init(actor: "client-1", startIndex: 6, limit: 100)).leaves.map(\.index) == [9, 13, 17])
        let range = try log.records(.init(from: start + 5, to: start + 8, limit: 100))
        #expect(range.leaves.map(\.index) == [5, 6, 7])
        #expect(range.nextIndex == nil)
    }
}
