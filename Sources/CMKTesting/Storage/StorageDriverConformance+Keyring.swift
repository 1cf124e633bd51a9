import CMKCore
import Foundation

extension StorageDriverConformance {
    /// Keyring compare-and-swap checks (SPEC §4).
    static let keyringChecks: [Check] = [
        Check(name: "keyring.initiallyAbsent") { c in
            let driver = try await c.driver()
            try c.expect(driver.account == c.account, "driver reports account '\(driver.account)', not '\(c.account)'")
            let keyring = try await driver.readKeyring()
            try c.expect(keyring == nil, "a fresh account already has a keyring (generation \(keyring?.generation ?? 0))")
        },
        Check(name: "keyring.create") { c in
            let driver = try await c.driver()
            let first = c.keyring(generation: 1)
            try await driver.replaceKeyring(first, expectedGeneration: nil)
            let stored = try await driver.readKeyring()
            try c.expect(stored == first, "read back \(String(describing: stored)) instead of the created keyring")
        },
        Check(name: "keyring.createTwiceConflicts") { c in
            let driver = try await c.driver()
            let first = c.keyring(generation: 1)
            try await driver.replaceKeyring(first, expectedGeneration: nil)
            try await c.expectError([.conflict, .alreadyExists], "creating a keyring that exists") {
                try await driver.replaceKeyring(c.keyring(generation: 1, version: "v2"), expectedGeneration: nil)
            }
            try c.expect(try await driver.readKeyring() == first, "a refused create changed the stored keyring")
        },
        Check(name: "keyring.sequentialUpdates") { c in
            let driver = try await c.driver()
            try await driver.replaceKeyring(c.keyring(generation: 1), expectedGeneration: nil)
            for generation in UInt64(2)...5 {
                let next = c.keyring(generation: generation, version: "v\(generation)")
                try await driver.replaceKeyring(next, expectedGeneration: generation - 1)
                try c.expect(try await driver.readKeyring() == next, "generation \(generation) did not read back")
            }
        },
        Check(name: "keyring.staleGenerationConflicts") { c in
            let driver = try await c.driver()
            try await driver.replaceKeyring(c.keyring(generation: 1), expectedGeneration: nil)
            let second = c.keyring(generation: 2, version: "v2")
            try await driver.replaceKeyring(second, expectedGeneration: 1)
            try await c.expectError([.conflict], "CAS with stale generation 1 at generation 2") {
                try await driver.replaceKeyring(c.keyring(generation: 2, version: "v3"), expectedGeneration: 1)
            }
            try await c.expectError([.conflict], "CAS expecting a future generation 5 at generation 2") {
                try await driver.replaceKeyring(c.keyring(generation: 6, version: "v3"), expectedGeneration: 5)
            }
            try c.expect(try await driver.readKeyring() == second, "a refused CAS changed the stored keyring")
        },
        Check(name: "keyring.updateWithoutKeyringConflicts") { c in
            let driver = try await c.driver()
            try await c.expectError([.conflict, .notFound], "CAS expecting generation 1 on an empty account") {
                try await driver.replaceKeyring(c.keyring(generation: 2), expectedGeneration: 1)
            }
            try c.expect(try await driver.readKeyring() == nil, "a refused CAS created a keyring")
        },
        Check(name: "keyring.wrongNextGenerationRefused") { c in
            let driver = try await c.driver()
            try await c.expectError(Self.anyCode, "creating a keyring at generation 2") {
                try await driver.replaceKeyring(c.keyring(generation: 2), expectedGeneration: nil)
            }
            try c.expect(try await driver.readKeyring() == nil, "a keyring with a wrong generation was created")
            let first = c.keyring(generation: 1)
            try await driver.replaceKeyring(first, expectedGeneration: nil)
            for wrong: UInt64 in [1, 3, 0] {
                try await c.expectError(Self.anyCode, "storing generation \(wrong) over generation 1") {
                    try await driver.replaceKeyring(c.keyring(generation: wrong, version: "v9"), expectedGeneration: 1)
                }
            }
            try c.expect(try await driver.readKeyring() == first, "a refused keyring with a wrong generation changed the stored one")
        },
        Check(name: "keyring.racingTasksOneWins") { c in
            let driver = try await c.driver()
            try await raceKeyring(c, [driver, driver, driver, driver])
        },
        Check(name: "keyring.racingInstancesOneWins", needsSecondInstance: true) { c in
            let driver = try await c.driver()
            let other = try await c.second()
            try await raceKeyring(c, [driver, other, driver, other])
        },
        Check(name: "keyring.visibleToSecondInstance", needsSecondInstance: true) { c in
            let driver = try await c.driver()
            let other = try await c.second()
            let first = c.keyring(generation: 1)
            try await driver.replaceKeyring(first, expectedGeneration: nil)
            try c.expect(try await other.readKeyring() == first, "the second instance does not see the created keyring")
            let second = c.keyring(generation: 2, version: "v2")
            try await other.replaceKeyring(second, expectedGeneration: 1)
            try c.expect(try await driver.readKeyring() == second, "the first instance does not see the second's update")
            try await c.expectError([.conflict], "stale CAS through the first instance") {
                try await driver.replaceKeyring(c.keyring(generation: 2, version: "v3"), expectedGeneration: 1)
            }
        },
    ]

    /// Every storage error code: for refusals whose code the contract leaves open.
    static let anyCode: [StorageError.Code] = [
        .conflict, .notFound, .alreadyExists, .corrupt, .permissions, .io, .invalidName, .suspended, .unknownDEK, .wrongAccount, .misconfigured,
    ]

    /// Rounds of concurrent CAS from the same generation through `drivers`: exactly one must
    /// win each round, every loser must get `.conflict`, and the winner's keyring must be stored.
    static func raceKeyring(_ c: Context, _ drivers: [any StorageDriver]) async throws {
        try await drivers[0].replaceKeyring(c.keyring(generation: 1), expectedGeneration: nil)
        let rounds: UInt64 = 8
        for round in 1...rounds {
            let candidates = drivers.indices.map { c.keyring(generation: round + 1, version: "r\(round)-\($0)") }
            let results = await withTaskGroup(of: (Int, Result<Void, any Error>).self) { group in
                for (index, driver) in drivers.enumerated() {
                    let candidate = candidates[index]
                    group.addTask {
                        do {
                            try await driver.replaceKeyring(candidate, expectedGeneration: round)
                            return (index, .success(()))
                        } catch {
                            return (index, .failure(error))
                        }
                    }
                }
                var results: [(Int, Result<Void, any Error>)] = []
                for await result in group { results.append(result) }
                return results
            }
            let winners = results.filter { if case .success = $0.1 { return true } else { return false } }.map(\.0)
            try c.expect(winners.count == 1, "round \(round): \(winners.count) of \(drivers.count) racing CAS writers won, expected exactly 1")
            for case (let index, .failure(let error)) in results {
                try c.expect((error as? StorageError)?.code == .conflict, "round \(round): loser \(index) got \(error), expected storage.conflict")
            }
            let stored = try await drivers[0].readKeyring()
            try c.expect(stored == candidates[winners[0]], "round \(round): the stored keyring is not the winner's")
        }
    }
}
