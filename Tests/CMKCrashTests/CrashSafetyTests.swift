import Foundation
import Testing

/// Crash safety proven with real process kills (SPEC §4: the keyring is replaced atomically and
/// conditionally; §6: lazy re-encryption). Each case copies a prepared account, runs an operation
/// in a `cmk-crashtest` child, SIGKILLs it (at an injected crash point or after a random delay),
/// then checks in fresh processes that nothing was lost and that rerunning the operation finishes it.
@Suite("Crash safety with real process kills")
struct CrashSafetyTests {
    static let drivers = ["directory", "sqlite", "postgres"]
    /// Random-time kills per operation and driver.
    static let randomKills = 6

    /// An operation under test, the state it starts from, and what "finished" looks like.
    struct Operation {
        var command: String
        var start: String
        var exhaustive: Bool
        var finished: @Sendable (VerifySummary) -> Bool
    }

    /// What the harness exercised for one driver.
    struct Tally {
        var points: Set<String> = []
        var injected = 0
        var kills = 0
        var losses = 0
    }

    @Test("killing rebind, lazy re-encryption and sweep at every crash point and at random times loses nothing",
          arguments: drivers)
    func killAtEveryStep(driver: String) async throws {
        let work = try Workspace()
        let rotated = work.path("rotated")
        try Worlds.prepare(rotated, driver: driver)
        try await expectSuccess(["setup", rotated, driver])
        try await expectSuccess(["rotate", rotated])
        let rebound = work.path("rebound")
        try await Worlds.copy(rotated, to: rebound, driver: driver)
        try await expectSuccess(["rebind", rebound, driver])
        let start = try await verify(rebound, driver)
        #expect(start.ok && start.boundToCurrent && start.underActiveDEK == 0, "objects should start under the old DEK: \(start)")

        let operations = [
            Operation(command: "rebind", start: rotated, exhaustive: true) { $0.boundToCurrent },
            Operation(command: "read-all", start: rebound, exhaustive: true) { $0.underActiveDEK == $0.objects },
            Operation(command: "sweep", start: rebound, exhaustive: true) { $0.underActiveDEK == $0.objects },
        ]
        var tally = Tally()
        for operation in operations {
            let (points, elapsed) = try await trace(operation, driver: driver, in: work)
            #expect(!points.isEmpty, "\(operation.command) passed no crash point")
            if operation.exhaustive {
                for (point, hits) in points.sorted(by: { $0.key < $1.key }) {
                    tally.points.insert(point)
                    for n in 1...hits {
                        try await crashCase(operation, driver: driver, in: work, tally: &tally,
                                            environment: ["CMK_CRASH_AT": "\(point)#\(n)"])
                    }
                }
            }
            for _ in 0..<Self.randomKills {
                let delay = Duration.nanoseconds(Int64.random(in: 0...max(1, elapsed.nanoseconds)))
                try await crashCase(operation, driver: driver, in: work, tally: &tally, killAfter: delay)
            }
        }
        print("crash harness (\(driver)): \(tally.points.count) crash points, \(tally.injected) injected crashes, \(tally.kills) kills, \(tally.losses) losses")
        print("crash points (\(driver)): \(tally.points.sorted().joined(separator: ", "))")
        #expect(tally.losses == 0)
        #expect(tally.kills >= tally.injected && tally.injected > 0)
    }

    @Test("two processes rebinding the same account at once end with one consistent keyring", arguments: drivers)
    func concurrentRebinds(driver: String) async throws {
        let work = try Workspace()
        let root = work.path("shared")
        try Worlds.prepare(root, driver: driver)
        try await expectSuccess(["setup", root, driver])
        for _ in 1...3 {
            try await expectSuccess(["rotate", root])
            let before = try await verify(root, driver)
            async let first = ChildProcess.run(["rebind", root, driver])
            async let second = ChildProcess.run(["rebind", root, driver])
            let results = try await [first, second]
            for result in results { #expect(result.succeeded, "rebind: \(result.description)") }
            let changed = results.filter { $0.stdout.contains(#""changed":"true""#) }.count
            #expect(changed == 1, "exactly one rebind should have committed: \(results.map(\.stdout))")
            let after = try await verify(root, driver)
            #expect(after.ok && after.boundToCurrent, "\(after)")
            #expect(after.generation == before.generation + 1, "one conditional write, not two: \(before.generation) → \(after.generation)")
            #expect(after.deks == before.deks + 1, "one fresh DEK minted, not two")
        }
    }

    // MARK: Steps

    /// Runs `operation` once on a copy with `CMK_CRASH_TRACE`: the points it hits, how often, and how long it took.
    private func trace(_ operation: Operation, driver: String, in work: Workspace) async throws -> ([String: Int], Duration) {
        let root = work.path("trace-\(operation.command)")
        try await Worlds.copy(operation.start, to: root, driver: driver)
        let traceFile = work.path("trace-\(operation.command).log")
        let clock = ContinuousClock()
        let began = clock.now
        let result = try await ChildProcess.run([operation.command, root, driver], environment: ["CMK_CRASH_TRACE": traceFile])
        let elapsed = clock.now - began
        #expect(result.succeeded, "\(operation.command) without a crash: \(result.description)")
        let names = try String(contentsOfFile: traceFile, encoding: .utf8).split(separator: "\n").map(String.init)
        try? FileManager.default.removeItem(atPath: root)
        return (Dictionary(names.map { ($0, 1) }, uniquingKeysWith: +), elapsed)
    }

    /// Copy, crash, verify, rerun, verify.
    private func crashCase(_ operation: Operation, driver: String, in work: Workspace, tally: inout Tally,
                           environment: [String: String] = [:], killAfter: Duration? = nil) async throws {
        let label = "\(operation.command) " + (environment["CMK_CRASH_AT"].map { "at \($0)" } ?? "killed after \(killAfter!)")
        let root = work.path("case")
        try await Worlds.copy(operation.start, to: root, driver: driver)
        defer { try? FileManager.default.removeItem(atPath: root) }

        let crashed = try await ChildProcess.run([operation.command, root, driver], environment: environment, killAfter: killAfter)
        if crashed.killed { tally.kills += 1 }
        if killAfter == nil {
            tally.injected += 1
            #expect(crashed.killed, "\(label): the child should have died by SIGKILL: \(crashed.description)")
        } else {
            #expect(crashed.killed || crashed.succeeded, "\(label): \(crashed.description)")
        }
        let afterCrash = try await verify(root, driver)
        if !afterCrash.ok { tally.losses += 1 }
        #expect(afterCrash.ok, "\(label): loss after the crash: \(afterCrash.problems)")

        let rerun = try await ChildProcess.run([operation.command, root, driver])
        #expect(rerun.succeeded, "\(label): rerun failed: \(rerun.description)")
        let final = try await verify(root, driver)
        if !final.ok { tally.losses += 1 }
        #expect(final.ok, "\(label): loss after the rerun: \(final.problems)")
        #expect(operation.finished(final), "\(label): the rerun did not finish the job: \(final)")
    }

    private func verify(_ root: String, _ driver: String) async throws -> VerifySummary {
        let result = try await ChildProcess.run(["verify", root, driver])
        guard result.reason == .exit, let summary = try? JSONDecoder().decode(VerifySummary.self, from: Data(result.stdout.utf8)) else {
            return VerifySummary(problems: ["verify did not report: \(result.description)"])
        }
        return summary
    }

    private func expectSuccess(_ arguments: [String]) async throws {
        let result = try await ChildProcess.run(arguments)
        guard result.succeeded else {
            throw HarnessError(description: "cmk-crashtest \(arguments.joined(separator: " ")): \(result.description)")
        }
    }
}

/// `cmk-crashtest verify`'s JSON summary.
struct VerifySummary: Decodable, CustomStringConvertible {
    var ok = false
    var problems: [String] = []
    var generation: UInt64 = 0
    var deks = 0
    var keyVersions: [String] = []
    var currentVersion = ""
    var boundToCurrent = false
    var objects = 0
    var readable = 0
    var underActiveDEK = 0

    var description: String {
        "ok=\(ok) generation=\(generation) deks=\(deks) versions=\(keyVersions) current=\(currentVersion) bound=\(boundToCurrent) objects=\(objects) readable=\(readable) underActive=\(underActiveDEK) problems=\(problems)"
    }
}

/// A private temporary directory, removed at deinit.
final class Workspace {
    let root: String
    init() throws {
        root = FileManager.default.temporaryDirectory.appending(path: "cmk-crash-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
    deinit { try? FileManager.default.removeItem(atPath: root) }
    func path(_ name: String) -> String { root + "/" + name }
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
