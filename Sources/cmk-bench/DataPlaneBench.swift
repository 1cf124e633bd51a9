import CMKAccounts
import CMKCore
import CMKEnvelope
import CMKSyncer
import Foundation

/// Suite 4: reads through the data plane with the DEK cache hit and missed, and lazy
/// re-encryption after a rotation.
enum DataPlaneBench {
    static let objectSize = 64 << 10

    static func run(_ plan: Plan, scratch: String, into results: inout Results) async throws {
        for driver in [SyncWorld.Driver.memory, .directory] {
            let world = try SyncWorld(root: "\(scratch)/dataplane-\(driver.rawValue)", driver: driver, count: 1)
            try await world.bindAll()
            let account = world.accounts[0]
            let cache = DEKCache(configuration: try .init())
            let dataPlane = DataPlane(resolver: DEKResolver(vault: world.vault, cache: cache))
            let payload = SecretBytes.random(count: objectSize).withUnsafeBytes { Array($0) }
            let object = try ObjectName("bench/object")
            _ = try await dataPlane.put(account, object, payload)

            let samples = plan.latencySamples
            var hits: [Double] = []
            var misses: [Double] = []
            _ = try await dataPlane.get(account, object)
            for _ in 0..<samples {
                let start = Measure.wall()
                _ = try await dataPlane.get(account, object)
                hits.append(Measure.wall() - start)
                cache.purge(account: account.name)
                let missStart = Measure.wall()
                _ = try await dataPlane.get(account, object)
                misses.append(Measure.wall() - missStart)
            }
            let hit = Distribution(hits), miss = Distribution(misses)
            for (label, d) in [("hit", hit), ("miss (unwrap in the local vault)", miss)] {
                results.add(Figure(suite: "dataplane", name: "get 64 KiB, DEK cache \(label), \(driver.rawValue), p50", value: d.p50, unit: "s",
                                   detail: ["p90 s": d.p90, "p99 s": d.p99, "samples": Double(d.count)]))
            }

            // Lazy re-encryption: objects under the old DEK, a rotation, then every object read once.
            let count = plan.reencryptObjects
            let names = try (0..<count).map { try ObjectName(String(format: "old/%05d", $0)) }
            for name in names { _ = try await dataPlane.put(account, name, payload) }
            _ = try await world.vault.rotateKey(world.key)
            let (report, _) = await world.pass(through: world.vault, concurrency: 1).run(previous: nil)
            guard report.accounts.first?.outcome.code == .rebound else {
                throw OpenSSLAnchor.Failure(description: "rotation before the re-encryption benchmark did not rebind: \(String(describing: report.accounts.first?.outcome))")
            }
            var reencrypted = 0
            let start = Measure.wall(), cpu0 = Measure.processCPU()
            for name in names where try await dataPlane.get(account, name) { _ in }.reencrypted { reencrypted += 1 }
            let seconds = Measure.wall() - start, cpu = Measure.processCPU() - cpu0
            guard reencrypted == count else {
                throw OpenSSLAnchor.Failure(description: "lazy re-encryption rewrote \(reencrypted) of \(count) objects")
            }
            let bytes = Double(count * objectSize)
            results.add(Figure(suite: "dataplane", name: "lazy re-encryption, 64 KiB objects, \(driver.rawValue)", value: bytes / seconds, unit: "B/s",
                               detail: ["objects/s": Double(count) / seconds, "objects": Double(count), "B per CPU s": bytes / cpu]))
        }
    }
}
