import ArgumentParser
import Foundation

@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cmk-bench",
        abstract: "Measures cmk-syncer against its physical limits (docs/performance.md).",
        discussion: "Build with `swift build -c release`; `make bench` and `make bench-quick` do both.",
        subcommands: [Run.self, ScenarioCommand.self, PKCS11TokenCommand.self],
        defaultSubcommand: Run.self)
}

extension BenchCommand {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "run", abstract: "Runs the benchmarks, prints a table and writes JSON.")

        @Flag(help: "The short run (under 5 minutes after the build): fewer repetitions, a 10 s daemon idle window.")
        var quick = false

        @Option(help: "Suites to run, comma-separated: envelope, rsa, sync, rotation, dataplane, daemon, vault, keys, probe, metrics, pkcs11, postgres (default: all).")
        var only: String = "envelope,rsa,sync,rotation,dataplane,daemon,vault,keys,probe,metrics,pkcs11,postgres"

        @Option(help: "Accounts the keys and postgres suites rotate across three daemons on cmk-vault (default 10000, the documented figure; fewer for a quick look; the postgres suite takes at most 1000 with --quick).")
        var fleetAccounts = 10_000

        @Option(help: "Directory for the JSON results.")
        var out: String = "bench-results"

        @Option(help: ArgumentHelp("Tries per vault call when the throttled vault refuses (1 = no retry, for comparison).", visibility: .hidden))
        var throttleAttempts = 8

        @Option(help: "Scratch directory for vaults and accounts (default: a fresh one in $TMPDIR, removed afterwards).")
        var scratch: String?

        func run() async throws {
            var plan = quick ? Plan.quick : Plan.full
            guard (1...20).contains(throttleAttempts) else { throw ValidationError("--throttle-attempts must be 1-20, not \(throttleAttempts)") }
            plan.throttleAttempts = throttleAttempts
            guard (3...100_000).contains(fleetAccounts) else { throw ValidationError("--fleet-accounts must be 3-100000, not \(fleetAccounts)") }
            plan.fleetAccounts = fleetAccounts
            let suites = Set(only.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            let known: Set = ["envelope", "rsa", "sync", "rotation", "dataplane", "daemon", "vault", "keys", "probe", "metrics", "pkcs11", "postgres"]
            guard suites.isSubset(of: known) else {
                throw ValidationError("--only: unknown suite(s) \(suites.subtracting(known).sorted().joined(separator: ", ")); accepted: \(known.sorted().joined(separator: ", "))")
            }
            let scratch = scratch ?? (NSTemporaryDirectory() + "cmk-bench-\(getpid())")
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            defer { if self.scratch == nil { try? FileManager.default.removeItem(atPath: scratch) } }

            var results = Results(started: Date(), mode: plan.mode, machine: Machine.describe())
            print("cmk-bench \(plan.mode): \(results.machine["cpu"] ?? "?"), \(results.machine["cores"] ?? "?") cores, load \(results.machine["load"] ?? "?")")
            print(Results.header())
            let started = Measure.wall()
            if suites.contains("envelope") { try await CryptoBench.envelope(plan, into: &results) }
            if suites.contains("rsa") { try await CryptoBench.rsa(plan, scratch: scratch, into: &results) }
            if suites.contains("sync") { try SyncSuite.idle(plan, scratch: scratch, into: &results) }
            if suites.contains("rotation") { try SyncSuite.rotation(plan, scratch: scratch, into: &results) }
            if suites.contains("dataplane") { try await DataPlaneBench.run(plan, scratch: scratch, into: &results) }
            if suites.contains("daemon") { try await DaemonBench.run(plan, scratch: scratch, into: &results) }
            if suites.contains("vault") { try await VaultBench.run(plan, scratch: scratch, into: &results) }
            if suites.contains("keys") { try await KeysAPIBench.run(plan, scratch: scratch, into: &results) }
            if suites.contains("probe") { try await ProbeBench.run(plan, scratch: scratch, into: &results) }
            if suites.contains("metrics") { try await MetricsBench.run(plan, scratch: scratch, into: &results) }
            if suites.contains("pkcs11") { try await PKCS11Bench.run(plan, scratch: scratch, into: &results) }
            if suites.contains("postgres") { try await PostgresBench.run(plan, scratch: scratch, into: &results) }
            results.machine["load after"] = Machine.load()
            results.machine["seconds"] = String(format: "%.0f", Measure.wall() - started)
            for note in results.notes { print("note: \(note)") }
            let missed = results.figures.filter { $0.met == false }
            print("\(results.figures.count) figures, \(missed.count) missed their target, \(results.machine["seconds"]!) s; JSON: \(try results.write(to: out))")
        }
    }

    struct ScenarioCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "scenario", abstract: "Runs one sync scenario (used by `run`; prints JSON).",
                                                        shouldDisplay: false)

        @Argument(help: "The scenario as JSON.")
        var json: String

        func run() async throws {
            let scenario = try JSONDecoder().decode(SyncScenario.self, from: Data(json.utf8))
            let measurement = try await scenario.run()
            print(String(decoding: try JSONEncoder().encode(measurement), as: UTF8.self))
        }
    }
}
