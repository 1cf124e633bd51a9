import CMKCore
import Foundation

extension StorageDriverConformance {
    /// Object write, read, list and delete checks.
    static let objectChecks: [Check] = [
        Check(name: "objects.roundTripMultiChunk") { c in
            let driver = try await c.driver()
            let name = try c.name("blob")
            let bytes = pattern(2_500_001, seed: 1)
            let revision = try await c.put(driver, name, bytes, piece: 77_777)
            let (read, readRevision) = try await c.get(driver, name)
            try c.expect(read == bytes, "read back \(read.count) bytes that differ from the \(bytes.count) written")
            try c.expect(readRevision == revision, "reader reports revision \(readRevision), commit returned \(revision)")
        },
        Check(name: "objects.roundTripEmpty") { c in
            let driver = try await c.driver()
            let name = try c.name("empty")
            try await c.put(driver, name, Data())
            try await c.expectObject(driver, name, equals: Data(), "empty object")
            let noWrites = try await driver.makeObjectWriter(try c.name("never-written"))
            _ = try await noWrites.commit(.always)
            try await c.expectObject(driver, try c.name("never-written"), equals: Data(), "object committed without any write")
        },
        Check(name: "objects.roundTrip3MiB") { c in
            let driver = try await c.driver()
            let name = try c.name("three")
            let bytes = pattern(3 << 20, seed: 3)
            try await c.put(driver, name, bytes, piece: 1 << 20)
            try await c.expectObject(driver, name, equals: bytes, "3 MiB object")
        },
        Check(name: "objects.invisibleBeforeCommit") { c in
            let driver = try await c.driver()
            let name = try c.name("pending")
            let writer = try await driver.makeObjectWriter(name)
            try await writer.write(pattern(10_000, seed: 4))
            try await c.expectError([.notFound], "opening an uncommitted object") { try await driver.openObject(name) }
            try c.expect(try await driver.listObjects().isEmpty, "an uncommitted object is listed")
            _ = try await writer.commit(.always)
            try c.expect(try await driver.listObjects() == [name], "the committed object is not listed")
        },
        Check(name: "objects.abortLeavesNothing") { c in
            let driver = try await c.driver()
            let name = try c.name("aborted")
            let writer = try await driver.makeObjectWriter(name)
            try await writer.write(pattern(2_000_000, seed: 5))
            await writer.abort()
            try await c.expectError([.notFound], "opening an aborted object") { try await driver.openObject(name) }
            try c.expect(try await driver.listObjects().isEmpty, "an aborted object is listed")
            let kept = pattern(1000, seed: 6)
            try await c.put(driver, name, kept)
            let replacement = try await driver.makeObjectWriter(name)
            try await replacement.write(pattern(5000, seed: 7))
            await replacement.abort()
            try await c.expectObject(driver, name, equals: kept, "an aborted replacement")
        },
        Check(name: "objects.ifAbsent") { c in
            let driver = try await c.driver()
            let name = try c.name("once")
            let first = pattern(4321, seed: 8)
            try await c.put(driver, name, first, .ifAbsent)
            try await c.expectError([.alreadyExists, .conflict], "ifAbsent on an existing object") {
                try await c.put(driver, name, pattern(1234, seed: 9), .ifAbsent)
            }
            try await c.expectObject(driver, name, equals: first, "after a refused ifAbsent write")
        },
        Check(name: "objects.ifRevisionSucceeds") { c in
            let driver = try await c.driver()
            let name = try c.name("lazy")
            let old = try await c.put(driver, name, pattern(3000, seed: 10))
            let newer = pattern(3100, seed: 11)
            let new = try await c.put(driver, name, newer, .ifRevision(old))
            try c.expect(new != old, "a conditional replace kept revision \(old)")
            let (bytes, revision) = try await c.get(driver, name)
            try c.expect(bytes == newer && revision == new, "the conditional replace is not what reads back")
        },
        Check(name: "objects.ifRevisionConflictLeavesNewer") { c in
            let driver = try await c.driver()
            let name = try c.name("contended")
            let seen = try await c.put(driver, name, pattern(3000, seed: 12))
            let theirs = pattern(2000, seed: 13)
            let theirRevision = try await c.put(driver, name, theirs)
            try await c.expectError([.conflict], "ifRevision after someone else's write") {
                try await c.put(driver, name, pattern(2500, seed: 14), .ifRevision(seen))
            }
            let (bytes, revision) = try await c.get(driver, name)
            try c.expect(bytes == theirs && revision == theirRevision, "the newer object was not left intact")
        },
        Check(name: "objects.ifRevisionOnDeletedConflicts") { c in
            let driver = try await c.driver()
            let name = try c.name("gone")
            let seen = try await c.put(driver, name, pattern(100, seed: 15))
            try await driver.deleteObject(name, ifRevision: nil)
            try await c.expectError([.conflict, .notFound], "ifRevision on a deleted object") {
                try await c.put(driver, name, pattern(100, seed: 16), .ifRevision(seen))
            }
            try await c.expectError([.notFound], "opening an object a refused write would have recreated") { try await driver.openObject(name) }
        },
        Check(name: "objects.revisionChangesOnEqualBytes") { c in
            let driver = try await c.driver()
            let name = try c.name("same")
            let bytes = pattern(777, seed: 17)
            var seen: [ObjectRevision] = []
            for _ in 0..<5 {
                let revision = try await c.put(driver, name, bytes)
                try c.expect(!seen.contains(revision), "revision \(revision) was reused for a new write of equal bytes")
                seen.append(revision)
            }
            let empty = try c.name("same-empty")
            let a = try await c.put(driver, empty, Data())
            let b = try await c.put(driver, empty, Data())
            try c.expect(a != b, "two writes of an empty object share revision \(a)")
            try await c.expectError([.conflict], "ifRevision with an older revision of equal bytes") {
                try await c.put(driver, name, bytes, .ifRevision(seen[0]))
            }
            try c.expect(try await c.get(driver, name).revision == seen[4], "a refused write changed the revision")
        },
        Check(name: "objects.listSorted") { c in
            let driver = try await c.driver()
            let texts = ["zeta", "alpha", "b/c", "b", "b-c", "a/z", "A", "0", "m/n/o", "alpha.1", "_x"]
            for (index, text) in texts.enumerated() { try await c.put(driver, try c.name(text), pattern(index, seed: 18)) }
            let listed = try await driver.listObjects()
            let expected = try texts.map(c.name).sorted()
            try c.expect(listed == expected, "listed \(listed.map(\.value)), expected \(expected.map(\.value))")
        },
        Check(name: "objects.delete") { c in
            let driver = try await c.driver()
            let name = try c.name("doomed")
            try await c.put(driver, name, pattern(10, seed: 19))
            try await driver.deleteObject(name, ifRevision: nil)
            try await c.expectError([.notFound], "opening a deleted object") { try await driver.openObject(name) }
            try c.expect(try await driver.listObjects().isEmpty, "a deleted object is listed")
            try await c.expectError([.notFound], "deleting an absent object") { try await driver.deleteObject(name, ifRevision: nil) }
            try await c.expectError([.notFound], "deleting an absent object with a revision") {
                try await driver.deleteObject(name, ifRevision: ObjectRevision("whatever"))
            }
        },
        Check(name: "objects.deleteWithRevision") { c in
            let driver = try await c.driver()
            let name = try c.name("guarded")
            let old = try await c.put(driver, name, pattern(10, seed: 20))
            let newer = pattern(11, seed: 21)
            let new = try await c.put(driver, name, newer)
            try await c.expectError([.conflict], "deleting with a stale revision") { try await driver.deleteObject(name, ifRevision: old) }
            try await c.expectObject(driver, name, equals: newer, "after a refused delete")
            try await driver.deleteObject(name, ifRevision: new)
            try await c.expectError([.notFound], "opening an object deleted by revision") { try await driver.openObject(name) }
        },
        Check(name: "objects.openAbsentNotFound") { c in
            let driver = try await c.driver()
            try await c.expectError([.notFound], "opening an object that never existed") { try await driver.openObject(try c.name("nothing/here")) }
        },
        Check(name: "objects.namesWithSlash") { c in
            let driver = try await c.driver()
            let texts = ["a", "a/b", "a/b/c", "a-b", "a_b", "a.b", "x/y.z/0-1_2", String(repeating: "s/", count: 127) + "t"]
            for (index, text) in texts.enumerated() { try await c.put(driver, try c.name(text), pattern(100 + index, seed: UInt8(index))) }
            for (index, text) in texts.enumerated() {
                try await c.expectObject(driver, try c.name(text), equals: pattern(100 + index, seed: UInt8(index)), "name '\(text)'")
            }
            try c.expect(try await driver.listObjects() == (try texts.map(c.name).sorted()), "names with '/' do not list back")
            try await driver.deleteObject(try c.name("a/b"), ifRevision: nil)
            try c.expect(try await driver.listObjects().count == texts.count - 1, "deleting 'a/b' removed other objects")
        },
        Check(name: "objects.readerSurvivesReplace") { c in
            let driver = try await c.driver()
            try await readerSurvives(c, writer: driver, reader: driver, delete: false)
        },
        Check(name: "objects.readerSurvivesDelete") { c in
            let driver = try await c.driver()
            try await readerSurvives(c, writer: driver, reader: driver, delete: true)
        },
        Check(name: "objects.readerSurvivesReplaceByOtherInstance", needsSecondInstance: true) { c in
            let driver = try await c.driver()
            try await readerSurvives(c, writer: try await c.second(), reader: driver, delete: false)
        },
        Check(name: "objects.racingConditionalWritesOneWins") { c in
            try await raceObject(c, [try await c.driver()])
        },
        Check(name: "objects.racingInstancesOneWins", needsSecondInstance: true) { c in
            let driver = try await c.driver()
            try await raceObject(c, [driver, try await c.second()])
        },
        Check(name: "objects.manyObjects") { c in
            let driver = try await c.driver()
            var names: [ObjectName] = []
            for index in 0..<60 {
                let name = try c.name("dir\(index % 3)/object-\(index)")
                names.append(name)
                try await c.put(driver, name, pattern(index * 13, seed: UInt8(index)))
            }
            try c.expect(try await driver.listObjects() == names.sorted(), "60 objects do not list back sorted")
        },
    ]

    /// Opens a reader on a 3 MiB object, reads one chunk, replaces (or deletes) the object
    /// through `writer`, and requires the reader to finish with exactly the old bytes.
    static func readerSurvives(_ c: Context, writer: any StorageDriver, reader: any StorageDriver, delete: Bool) async throws {
        let name = try c.name("read/while/replaced")
        let old = pattern(3 << 20, seed: 30)
        let oldRevision = try await c.put(writer, name, old, piece: 1 << 20)
        let open = try await reader.openObject(name)
        var bytes = try await open.next() ?? Data()
        if delete {
            try await writer.deleteObject(name, ifRevision: nil)
        } else {
            try await c.put(writer, name, pattern(3 << 20, seed: 31), piece: 1 << 20)
        }
        while let chunk = try await open.next() { bytes.append(chunk) }
        await open.close()
        try c.expect(open.revision == oldRevision, "the reader reports revision \(open.revision), opened at \(oldRevision)")
        try c.expect(bytes == old, "a reader opened before the \(delete ? "delete" : "replace") read \(bytes.count) bytes that are not the old object")
    }

    /// Several writers replace the same revision concurrently: exactly one wins, the others get `.conflict`.
    static func raceObject(_ c: Context, _ drivers: [any StorageDriver]) async throws {
        let name = try c.name("raced")
        var revision = try await c.put(drivers[0], name, pattern(1000, seed: 40))
        for round in 0..<5 {
            let writers = 4
            let results = await withTaskGroup(of: (Int, Result<ObjectRevision, any Error>).self) { group in
                for index in 0..<writers {
                    let driver = drivers[index % drivers.count]
                    let expected = revision
                    group.addTask {
                        do {
                            return (index, .success(try await c.put(driver, name, pattern(1000 + index, seed: UInt8(round)), .ifRevision(expected))))
                        } catch {
                            return (index, .failure(error))
                        }
                    }
                }
                var results: [(Int, Result<ObjectRevision, any Error>)] = []
                for await result in group { results.append(result) }
                return results
            }
            var winners: [(Int, ObjectRevision)] = []
            for (index, result) in results {
                switch result {
                case .success(let new): winners.append((index, new))
                case .failure(let error):
                    try c.expect((error as? StorageError)?.code == .conflict, "round \(round): losing writer got \(error), expected storage.conflict")
                }
            }
            try c.expect(winners.count == 1, "round \(round): \(winners.count) of \(writers) conditional writers won, expected exactly 1")
            let (bytes, stored) = try await c.get(drivers[0], name)
            try c.expect(stored == winners[0].1 && bytes == pattern(1000 + winners[0].0, seed: UInt8(round)), "round \(round): the stored object is not the winner's")
            revision = stored
        }
    }
}
