import CMKAccounts
import CMKCore
import CMKDirectoryStorage
import CMKEnvelope
import CMKSQLiteStorage
import CMKTesting
import Foundation
import Testing

@Suite("Data plane")
struct DataPlaneTests {
    func bound(_ h: Harness, _ account: Account) async throws {
        if case .missing = try await h.vault.snapshot(of: h.key) { _ = try await h.vault.createKey(h.key, size: .bits2048) }
        _ = try await h.executor.rebind(account, to: try await h.current())
    }

    @Test("put and get round trip, empty and multi-segment objects", arguments: [0, 5, 1024, 5000])
    func roundTrip(size: Int) async throws {
        let h = try Harness()
        let account = h.account()
        try await bound(h, account)
        let data = randomBytes(size)
        _ = try await h.plane.put(account, try ObjectName("obj"), data)
        let (plaintext, outcome) = try await h.plane.get(account, try ObjectName("obj"))
        #expect(plaintext == data)
        #expect(!outcome.reencrypted && outcome.bytes == size)
    }

    @Test("reading an object under an older DEK returns it and rewrites it under the newest DEK")
    func lazyReencryption() async throws {
        let h = try Harness()
        let account = h.account()
        try await bound(h, account)
        let name = try ObjectName("ledger")
        _ = try await h.plane.put(account, name, bytes("balance: 42"))
        let oldDEK = try await h.plane.dekOf(account, name)
        _ = try await h.executor.rebind(account, to: try await h.vault.rotateKey(h.key))
        let active = try #require(try await account.driver.readKeyring()?.activeDEK)
        let first = try await h.plane.get(account, name)
        #expect(first.plaintext == bytes("balance: 42"))
        #expect(first.outcome.reencrypted && first.outcome.dek == oldDEK)
        #expect(try await h.plane.dekOf(account, name) == active)
        let second = try await h.plane.get(account, name)
        #expect(second.plaintext == bytes("balance: 42") && !second.outcome.reencrypted)
    }

    @Test("a concurrent writer wins over lazy re-encryption")
    func lazyReencryptionLosesToWriter() async throws {
        let h = try Harness()
        let store = InMemoryStorageDriver.Store()
        let account = h.account("a", driver: InMemoryStorageDriver(account: "a", store: store))
        try await bound(h, account)
        let name = try ObjectName("doc")
        _ = try await h.plane.put(account, name, bytes("v1 data"))
        _ = try await h.executor.rebind(account, to: try await h.vault.rotateKey(h.key))
        // The sink runs while the object is being read: write a newer version right then.
        var wroteNewer = false
        let outcome = try await h.plane.get(account, name) { _ in
            if !wroteNewer {
                wroteNewer = true
                _ = try await h.plane.put(account, name, bytes("newer data"))
            }
        }
        #expect(!outcome.reencrypted)
        #expect(try await h.plane.get(account, name).plaintext == bytes("newer data"))
    }

    @Test("large objects stream through in chunks")
    func streaming() async throws {
        let h = try Harness(segmentSize: 65_536)
        let dir = TempDir()
        let account = h.account("big", driver: try DirectoryStorageDriver(directory: dir.path + "/big", account: "big"))
        try await bound(h, account)
        let chunk = randomBytes(100_000)
        var sent = 0
        _ = try await h.plane.put(account, try ObjectName("big.bin")) {
            guard sent < 40 else { return nil }
            sent += 1
            return chunk
        }
        var received = 0, largest = 0, mismatch = false
        _ = try await h.plane.get(account, try ObjectName("big.bin")) { piece in
            for (offset, byte) in piece.enumerated() where chunk[(received + offset) % chunk.count] != byte { mismatch = true; break }
            received += piece.count
            largest = max(largest, piece.count)
        }
        #expect(received == 4_000_000 && !mismatch)
        #expect(largest <= 20 * 65_536, "a read handed out \(largest) bytes at once")
    }

    @Test("an unknown DEK id, another account's object and a truncated object each fail clearly and overwrite nothing")
    func badObjects() async throws {
        let h = try Harness()
        let store = InMemoryStorageDriver.Store()
        let a = h.account("a")
        let b = h.account("b", driver: InMemoryStorageDriver(account: "b", store: store))
        try await bound(h, a)
        try await bound(h, b)
        _ = try await h.plane.put(a, try ObjectName("x"), bytes("from a"))
        // Copy a's object into b verbatim.
        let reader = try await a.driver.openObject(try ObjectName("x"))
        var blob = Data()
        while let chunk = try await reader.next() { blob += chunk }
        let writer = try await b.driver.makeObjectWriter(try ObjectName("x"))
        try await writer.write(blob)
        _ = try await writer.commit(.always)
        let foreign = await #expect(throws: (any Error).self) { _ = try await h.plane.get(b, try ObjectName("x")) }
        #expect("\(String(describing: foreign))".contains("envelope.wrong-account") || (foreign as? StorageError)?.code == .unknownDEK)

        // Unknown DEK: b's own object with a DEK id b's keyring does not hold.
        let sealed = try EnvelopeSealer.seal(bytes("x"), dek: DEKWrapping.generateDEK(), dekID: .random(), account: "b", object: "y")
        let w2 = try await b.driver.makeObjectWriter(try ObjectName("y"))
        try await w2.write(Data(sealed))
        _ = try await w2.commit(.always)
        let unknown = await #expect(throws: StorageError.self) { _ = try await h.plane.get(b, try ObjectName("y")) }
        #expect(unknown?.code == .unknownDEK)

        // Truncated: a's object cut short; the failed read must not rewrite it.
        let w3 = try await a.driver.makeObjectWriter(try ObjectName("x"))
        try await w3.write(blob.prefix(blob.count - 5))
        let revision = try await w3.commit(.always)
        let truncated = await #expect(throws: EnvelopeError.self) { _ = try await h.plane.get(a, try ObjectName("x")) }
        #expect(truncated?.code == .authenticationFailed || truncated?.code == .truncated)
        let after = try await a.driver.openObject(try ObjectName("x"))
        #expect(after.revision == revision)
        await after.close()
    }

    @Test("a sweep re-encrypts everything under old DEKs, reports progress, and resumes")
    func sweep() async throws {
        let h = try Harness()
        let account = h.account()
        try await bound(h, account)
        for index in 0..<10 { _ = try await h.plane.put(account, try ObjectName("obj-\(index)"), bytes("payload \(index)")) }
        _ = try await h.executor.rebind(account, to: try await h.vault.rotateKey(h.key))
        _ = try await h.plane.get(account, try ObjectName("obj-3"))
        var updates: [DataPlane.SweepProgress] = []
        let partial = try await h.plane.sweep(account, after: try ObjectName("obj-5")) { updates.append($0) }
        #expect(partial.total == 4 && partial.reencrypted == 4)
        let full = try await h.plane.sweep(account) { updates.append($0) }
        #expect(full.total == 10 && full.reencrypted == 5 && full.alreadyCurrent == 5 && full.failed.isEmpty)
        #expect(updates.last?.examined == 10 && updates.last?.cursor == "obj-9")
        let active = try #require(try await account.driver.readKeyring()?.activeDEK)
        for index in 0..<10 {
            #expect(try await h.plane.dekOf(account, try ObjectName("obj-\(index)")) == active)
            #expect(try await h.plane.get(account, try ObjectName("obj-\(index)")).plaintext == bytes("payload \(index)"))
        }
    }

    @Test("no DEK plaintext anywhere in the account files", arguments: ["directory", "sqlite"])
    func noPlaintextDEKs(driverName: String) async throws {
        let h = try Harness()
        let dir = TempDir()
        let driver: any StorageDriver = driverName == "directory"
            ? try DirectoryStorageDriver(directory: dir.path + "/acct", account: "acct")
            : try SQLiteStorageDriver(path: dir.path + "/acct.sqlite", account: "acct")
        let account = h.account("acct", driver: driver)
        try await bound(h, account)
        for index in 0..<5 { _ = try await h.plane.put(account, try ObjectName("o\(index)"), randomBytes(3000)) }
        _ = try await h.executor.rebind(account, to: try await h.vault.rotateKey(h.key))
        _ = try await h.plane.sweep(account)
        let keyring = try #require(try await account.driver.readKeyring())
        var deks: [[UInt8]] = []
        for wrapped in keyring.deks {
            let dek = try await h.vault.unwrap(wrapped.wrappedKey, key: h.key, version: wrapped.keyVersion, algorithm: wrapped.algorithm)
            deks.append(dek.withUnsafeBytes { Array($0) })
        }
        let files = try dir.allFiles()
        #expect(!files.isEmpty)
        for (name, content) in files {
            for dek in deks {
                #expect(content.range(of: Data(dek)) == nil, "DEK plaintext found in \(name)")
                #expect(content.range(of: Data(Hex.encode(dek).utf8)) == nil, "DEK hex found in \(name)")
                #expect(content.range(of: Data(Data(dek).base64EncodedString().utf8)) == nil, "DEK base64 found in \(name)")
            }
        }
        print("scanned \(files.count) \(driverName) files for \(deks.count) DEKs: none found")
    }
}
