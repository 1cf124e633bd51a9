import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Testing

@testable import CMKAzureTestServer

/// Replays real recorded Azure Key Vault traffic (the Azure SDK test suites' recordings, see
/// `../shared/fixtures/azure-keyvault/README.md`) against the emulator with the shared replayer
/// (`RecordingReplay` in CMKAzureTestServer, which cmk-vault's replay uses too; what is not
/// replayed is its `unsupported` list): status, JSON member names and types, the values that do
/// not depend on the key material or the clock, and the headers Azure sends.
@Suite("Azure test server: replay of recorded Azure traffic")
struct RecordingReplayTests {
    @Test("every supported recorded exchange gets the recorded status, shape and values from the emulator")
    func replayAll() async throws {
        let totals = try await RecordingReplay.replayAll { _, replay in
            try await Harness.with({ $0.retentionDays = 7; $0.purgeProtection = false }) { harness in
                let target = RecordingReplay.Target(vaultURL: harness.server.vaultURL, challengeResource: "https://vault.azure.net") { request in
                    let reply = try await harness.send(HTTPMethod(rawValue: request.method), request.url, query: request.query, json: request.json,
                                                       token: request.token, headers: request.headers)
                    return RecordingReplay.Reply(status: reply.status, headers: reply.headers.map { (name: $0.name, value: $0.value) }, body: reply.body)
                }
                return try await replay(target, try await harness.token())
            }
        }
        for mismatch in totals.mismatches { Issue.record("\(mismatch)") }
        print(totals.summary("the emulator"))
        guard RecordingReplay.isSharedDirectory else { return }
        // The recordings hold create, rotate, get, get version, update, list versions (two pages),
        // delete, get deleted, recover, purge, wrap/unwrap (RSA-OAEP, RSA-OAEP-256),
        // encrypt/decrypt, 401 challenges and 404s; all of those must have been compared.
        #expect(totals.compared >= 55, "only \(totals.compared) exchanges compared")
        #expect(totals.kinds.isSuperset(of: RecordingReplay.requiredKinds), "compared kinds: \(totals.kinds.sorted())")
    }
}
