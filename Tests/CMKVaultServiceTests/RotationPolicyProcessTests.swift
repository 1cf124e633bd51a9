import CMKCore
import CMKKeyVaultAPI
import CMKLocalVault
import CMKVaultLog
import CMKVaultService
import Foundation
import Testing

/// Rotation policies on a real cmk-vault: Microsoft's SDK sets and reads them, and the service
/// carries them out on time — restarted "days later" under libfaketime (`faketime`, installed by
/// scripts/install-deps.sh) instead of waiting — exactly once, also when killed (SIGKILL by PID) at
/// the crash points of a policy run or an API rotation (docs/vault-service.md, "Rotation policy").
@Suite(.serialized) struct RotationPolicyProcessTests {
    static let vaultSection = "vault: {master-key-file: master.key, create-master-key: true, retention-days: 7, rotation-check-interval: 1s}"
    /// Rotate 7 days after creation; new versions expire 60 days after theirs.
    static let policy = #"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P7D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P60D"}}"#
    static let key = "policy-key"

    /// libfaketime's environment for a process whose clock is `days` ahead (the test keeps its own).
    static func faketime(days: Int) throws -> [String: String] {
        let candidates = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                          "/usr/lib/faketime/libfaketime.so.1"]
        guard let library = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw VaultTestError("libfaketime is missing (looked at \(candidates)): run scripts/install-deps.sh (Debian package faketime)")
        }
        return ["LD_PRELOAD": library, "FAKETIME": "+\(days)d", "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_DONT_RESET": "1"]
    }

    /// The service principal's credential (an administrator adds it through Graph's addPassword).
    static func principal(_ vault: VaultProcess) throws -> [String: String] {
        let admin = try vault.ctl(["admins", "add", "Ada Admin", "--json"])
        let made = try vault.python("key_admin.py", [
            "KEY_ACTION": "principal", "ADMIN_CLIENT_ID": try #require(admin["clientId"] as? String), "ADMIN_SECRET": try #require(admin["secret"] as? String),
        ])
        return ["PRINCIPAL_CLIENT_ID": try #require(made["clientId"] as? String), "PRINCIPAL_SECRET": try #require(made["secret"] as? String)]
    }

    /// A vault with the key made and its policy set through the SDK.
    static func vaultWithPolicyKey(policy: String = policy, expiresDays: Int? = nil, environment: [String: String] = [:]) throws -> (VaultProcess, [String: String]) {
        let vault = try VaultProcess.start(extra: vaultSection, environment: environment)
        let principal = try principal(vault)
        var setup = principal.merging(["POLICY_ACTION": "setup", "KEY_NAME": key, "POLICY_JSON": policy]) { $1 }
        if let expiresDays { setup["EXPIRES_DAYS"] = String(expiresDays) }
        _ = try vault.python("rotation_policy.py", setup)
        return (vault, principal)
    }

    /// The key's versions as its key document holds them (id, created, exp).
    static func versions(_ vault: VaultProcess, key: String = key) throws -> [(id: String, created: Int, expires: Int?)] {
        let data = try Data(contentsOf: URL(fileURLWithPath: vault.state + "/vault/keys/\(key).json"))
        let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(document["versions"] as? [[String: Any]]).map { version in
            (id: version["id"] as? String ?? "", created: (version["created"] as? NSNumber)?.intValue ?? 0, expires: (version["expires"] as? NSNumber)?.intValue)
        }
    }

    /// Waits up to `seconds` for the key to have `count` versions; the count it has.
    static func waitForVersions(_ vault: VaultProcess, _ count: Int, seconds: Double = 20) throws -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        var have = try versions(vault).count
        while have < count, Date() < deadline {
            usleep(100_000)
            have = try versions(vault).count
        }
        return have
    }

    /// The security log's records (read from its file).
    static func records(_ vault: VaultProcess) throws -> [SecurityLogRecord] {
        let log = try VaultSecurityLog(stateDirectory: vault.state, origin: LogSigningKey.origin(publicURL: vault.url, tenantID: try vault.tenantID()))
        var records: [SecurityLogRecord] = []
        var start: UInt64 = 0
        while true {
            let page = try log.records(.init(startIndex: start, limit: 500))
            records += try page.leaves.map { try SecurityLogRecord(leaf: $0.leaf) }
            guard let next = page.nextIndex else { return records }
            start = next
        }
    }

    /// No torn key: every version's sealed private key opens under the master key, and wraps and
    /// unwraps a DEK through the keys API (in-process, over the service's files, its clock `days` ahead).
    static func expectIntact(_ vault: VaultProcess, days: Int) throws {
        let clock = RotationPolicyTests.MovableClock(Date().addingTimeInterval(TimeInterval(days * 86_400)))
        let local = try LocalVault(configuration: .init(directory: URL(fileURLWithPath: vault.state + "/vault"), masterKey: .file(URL(fileURLWithPath: vault.state + "/master.key")),
                                                        retentionDays: 7, purgeProtection: false, clock: clock))
        let url = vault.url
        let api = KeyVaultAPI(configuration: .init(retentionDays: 7, purgeProtection: false, clock: clock, vaultName: "test"), store: local, vaultURL: { url })
        for version in try versions(vault) {
            let dek = KeyVaultBase64URL.encode(Data((0..<32).map { _ in UInt8.random(in: 0...255) }))
            let wrapped = api.handle(ServerRequest(method: "POST", uri: "/keys/\(key)/\(version.id)/wrapkey?api-version=7.6", headers: [],
                                                   body: Data(#"{"alg":"RSA-OAEP-256","value":"\#(dek)"}"#.utf8)))
            let value = (try? JSONSerialization.jsonObject(with: wrapped.body) as? [String: Any])?["value"] as? String ?? ""
            let unwrapped = api.handle(ServerRequest(method: "POST", uri: "/keys/\(key)/\(version.id)/unwrapkey?api-version=7.6", headers: [],
                                                     body: Data(#"{"alg":"RSA-OAEP-256","value":"\#(value)"}"#.utf8)))
            let back = (try? JSONSerialization.jsonObject(with: unwrapped.body) as? [String: Any])?["value"] as? String
            #expect(wrapped.status == 200 && unwrapped.status == 200 && back.flatMap(KeyVaultBase64URL.decode) == KeyVaultBase64URL.decode(dek),
                    "version \(version.id) does not wrap and unwrap: \(wrapped.status) \(unwrapped.status)")
        }
    }

    /// Waits for the process to end; true when SIGKILL ended it.
    static func killedBySIGKILL(_ vault: VaultProcess, seconds: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while vault.process.isRunning, Date() < deadline { usleep(50_000) }
        return !vault.process.isRunning && vault.process.terminationReason == .uncaughtSignal && vault.process.terminationStatus == SIGKILL
    }

    @Test("Microsoft's SDK against cmk-vault: the default policy, update and get as the recording, a refused policy, rotate_key's expiry; a platform identity reads only")
    func sdkCrossCheck() throws {
        let vault = try VaultProcess.start(extra: Self.vaultSection)
        defer { vault.stop() }
        let principal = try Self.principal(vault)
        let platform = try vault.ctl(["identities", "add", "node-1.example", "--json"])
        let result = try vault.python("rotation_policy.py", principal.merging([
            "POLICY_ACTION": "crosscheck", "KEY_NAME": "sdk-policy-key",
            "PLATFORM_CLIENT_ID": try #require(platform["clientId"] as? String), "PLATFORM_SECRET": try #require(platform["secret"] as? String),
        ]) { $1 })
        #expect(Self.json(result["default_actions"]) == #"[["Notify",null,"P30D"]]"#, "\(result)")
        #expect(result["default_expires_in"] is NSNull && result["default_created"] as? Bool == false)
        #expect(Self.json(result["updated_actions"]) == #"[["Notify",null,"P30D"],["Rotate",null,"P30D"]]"#)
        #expect(result["updated_expires_in"] as? String == "P90D" && result["updated_dates"] as? Bool == true)
        #expect(result["updated_id"] as? String == vault.url + "/keys/sdk-policy-key/rotationpolicy")
        #expect(result["fetched_same"] as? Bool == true)
        #expect(result["refused_status"] as? Int == 400 && result["refused_code"] as? String == "BadParameter")
        #expect((result["refused_message"] as? String)?.contains("a Notify action takes timeBeforeExpiry") == true, "\(result["refused_message"] ?? "")")
        #expect(result["kept_after_refusal"] as? Bool == true)
        #expect(result["rotated_lifetime"] as? Int == 90 * 86_400)
        #expect(result["platform_get"] as? Bool == true && result["platform_put"] as? Int == 403)
        let operations = try Self.records(vault).map(\.operation)
        #expect(operations.filter { $0 == "key-rotation-policy-updated" }.count == 2, "the PUT and the refused PUT are records: \(operations)")
        #expect(operations.contains("key-rotation-policy-updated-failed") && operations.contains("access-denied"))
    }

    static func json(_ value: Any?) -> String {
        guard let value, let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) else { return "nil" }
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: " ", with: "")
    }

    @Test("a due rotation happens once: not before its moment; a service stopped before it and started 8 days later rotates exactly once, and not again when restarted")
    func rotatesOnceAcrossRestarts() throws {
        var (vault, _) = try Self.vaultWithPolicyKey()
        defer { vault.stop() }
        let first = try #require(try Self.versions(vault).first)
        sleep(3)  // three checks at the real time: not due
        #expect(try Self.versions(vault).count == 1)

        #expect(vault.terminate() == 0)
        vault = try vault.restart(environment: try Self.faketime(days: 8))
        #expect(try Self.waitForVersions(vault, 2) == 2, "no rotation 8 days later; log:\n\(vault.log.suffix(3000))")
        sleep(3)
        #expect(try Self.versions(vault).count == 2, "rotated twice")
        #expect(vault.terminate() == 0)
        vault = try vault.restart(environment: try Self.faketime(days: 9))
        sleep(3)
        let versions = try Self.versions(vault)
        #expect(versions.count == 2, "a restart rotated again")
        let second = try #require(versions.last)
        #expect(second.expires == second.created + 60 * 86_400, "the policy's expiryTime")
        #expect(second.created >= first.created + 8 * 86_400 - 60)

        let rotated = try Self.records(vault).filter { $0.operation == "key-rotated" }
        #expect(rotated.count == 1, "\(rotated)")
        #expect(rotated.first?.actor == "rotation-policy" && rotated.first?.details["version"] == first.id && rotated.first?.details["key"] == Self.key)
        #expect(vault.log.components(separatedBy: VaultMessageID.keyRotatedByPolicy).count - 1 == 1, "journal:\n\(vault.log.suffix(3000))")
        try Self.expectIntact(vault, days: 9)
    }

    @Test("kill -9 during a policy run, then a restart: no torn key, exactly one new version", arguments: [
        "rotation-policy.after-record", "key-rotation.version-written", "rotation-policy.before-follow-up",
    ])
    func killedDuringPolicyRun(point: String) throws {
        var (vault, _) = try Self.vaultWithPolicyKey()
        defer { vault.stop() }
        #expect(vault.terminate() == 0)
        vault = try vault.restart(environment: try Self.faketime(days: 8).merging(["CMK_CRASH_AT": point]) { $1 }, waitForListening: false)
        #expect(Self.killedBySIGKILL(vault), "the crash point \(point) was not reached; log:\n\(vault.log.suffix(3000))")
        let afterCrash = try Self.versions(vault).count
        #expect(afterCrash == (point == "rotation-policy.after-record" ? 1 : 2))

        vault = try vault.restart(environment: try Self.faketime(days: 8))
        #expect(try Self.waitForVersions(vault, 2) == 2)
        sleep(3)
        #expect(try Self.versions(vault).count == 2, "a duplicate version after the crash at \(point)")
        #expect(Set(try Self.versions(vault).map(\.id)).count == 2)
        // A crash after the record and before the version leaves that record as an attempt: the restart records and rotates once more.
        let rotated = try Self.records(vault).filter { $0.operation == "key-rotated" }.count
        #expect(rotated == (point == "rotation-policy.after-record" ? 2 : 1))
        try Self.expectIntact(vault, days: 8)
    }

    @Test("kill -9 during an API rotation (POST /keys/{name}/rotate), then a restart: no torn key, at most the one new version", arguments: [
        "key-rotation.before-version", "key-rotation.version-written",
    ])
    func killedDuringAPIRotation(point: String) throws {
        var (vault, principal) = try Self.vaultWithPolicyKey(policy: #"{"lifetimeActions":[]}"#)
        defer { vault.stop() }
        #expect(vault.terminate() == 0)
        vault = try vault.restart(environment: ["CMK_CRASH_AT": point])
        let answer = try vault.python("rotation_policy.py", principal.merging(["POLICY_ACTION": "rotate", "KEY_NAME": Self.key]) { $1 })
        #expect(answer["error"] != nil, "the rotation was answered: \(answer)")
        #expect(Self.killedBySIGKILL(vault))
        vault = try vault.restart()
        sleep(2)
        let versions = try Self.versions(vault)
        #expect(versions.count == (point == "key-rotation.before-version" ? 1 : 2))
        #expect(Set(versions.map(\.id)).count == versions.count)
        try Self.expectIntact(vault, days: 0)
    }

    @Test("near expiry: one journal warning and one key-near-expiry record for the version, not repeated after a restart; then key-expired once")
    func nearExpiryWarnedOnce() throws {
        var (vault, _) = try Self.vaultWithPolicyKey(policy: #"{"lifetimeActions":[{"trigger":{"timeBeforeExpiry":"P10D"},"action":{"type":"Notify"}}]}"#,
                                                     expiresDays: 40)
        defer { vault.stop() }
        sleep(2)
        #expect(!vault.log.contains(VaultMessageID.keyNearExpiry), "warned 40 days before a 10-day Notify")
        #expect(vault.terminate() == 0)
        vault = try vault.restart(environment: try Self.faketime(days: 31))
        let deadline = Date().addingTimeInterval(20)
        while !vault.log.contains(VaultMessageID.keyNearExpiry), Date() < deadline { usleep(100_000) }
        #expect(vault.log.contains("A root key's current version expires soon."), "log:\n\(vault.log.suffix(3000))")
        #expect(vault.terminate() == 0)
        vault = try vault.restart(environment: try Self.faketime(days: 32))
        sleep(3)
        #expect(vault.log.components(separatedBy: VaultMessageID.keyNearExpiry).count - 1 == 1, "warned again after a restart")
        var operations = try Self.records(vault).map(\.operation)
        #expect(operations.filter { $0 == "key-near-expiry" }.count == 1, "\(operations)")
        #expect(!operations.contains("key-expired"))

        #expect(vault.terminate() == 0)
        vault = try vault.restart(environment: try Self.faketime(days: 41))
        sleep(3)
        operations = try Self.records(vault).map(\.operation)
        #expect(operations.filter { $0 == "key-expired" }.count == 1, "\(operations)")
        #expect(vault.log.contains("A root key's current version has expired."))
        #expect(operations.filter { $0 == "key-near-expiry" }.count == 1)
    }
}
