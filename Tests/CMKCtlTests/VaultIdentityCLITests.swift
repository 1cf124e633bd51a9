import CMKIdentity
import Foundation
import Glibc
import Testing

/// `cmkctl admins` and `cmkctl identities` on a real identity store, with the real binary.
@Suite struct VaultIdentityCLITests {
    let state = NSTemporaryDirectory() + "cmkctl-vault-" + UUID().uuidString + "/state"

    func ctl(_ arguments: [String]) throws -> Harness.Result {
        try Harness.run(try Harness.binary("cmkctl"), arguments + ["--vault-state", state])
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: (state as NSString).deletingLastPathComponent) }

    @Test func anAdministratorIsAddedListedAndRemoved() throws {
        defer { cleanUp() }
        let added = try ctl(["admins", "add", "Ada O'Neil", "--json"])
        #expect(added.code == 0, "\(added.stderr)")
        #expect(added.stderr.contains("shown only this once"))
        let object = try added.object()
        let clientID = try #require(object["clientId"] as? String)
        let secret = try #require(object["secret"] as? String)
        #expect(secret.count == 43)
        // The printed secret is the one the store knows, and the store is private.
        let store = try IdentityStore(stateDirectory: state)
        #expect(object["tenantId"] as? String == store.tenant.tenantID)
        #expect(try store.authenticate(clientID: clientID, secret: secret).principal?.role == .administrator)
        var info = stat()
        #expect(stat(store.path, &info) == 0 && info.st_mode & 0o777 == 0o600)

        let text = try ctl(["admins", "add", "Grace"])
        #expect(text.code == 0)
        #expect(text.text.contains("client id:") && text.text.contains("secret:"))
        #expect(text.stderr.contains("shown only this once"))

        let list = try ctl(["admins", "list", "--json"])
        #expect(list.code == 0)
        let admins = try #require(try list.json() as? [[String: Any]])
        #expect(admins.map { $0["name"] as? String } == ["Ada O'Neil", "Grace"])
        #expect(!list.text.contains(secret) && !list.text.contains("secret\""))
        let table = try ctl(["admins", "list"])
        #expect(table.text.contains(clientID) && table.text.contains("Ada O'Neil") && !table.text.contains(secret))

        let removed = try ctl(["admins", "remove", clientID])
        #expect(removed.code == 0 && removed.text.contains("removed administrator \(clientID)"))
        #expect(try store.authenticate(clientID: clientID, secret: secret) == .refused(.unknownClient))
        let again = try ctl(["admins", "remove", clientID])
        #expect(again.code == 2)
        #expect(again.stderr.contains("identity.not-found") && again.stderr.contains("cmkctl admins list"))
    }

    @Test func racingOperatorsNeverMakeAnEleventhAdministrator() throws {
        defer { cleanUp() }
        // Twelve cmkctl processes at once.
        let binary = try Harness.binary("cmkctl")
        let processes = try (1...12).map { index in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["admins", "add", "admin \(index)", "--vault-state", state]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            return process
        }
        for process in processes { process.waitUntilExit() }
        #expect(processes.filter { $0.terminationStatus == 0 }.count == 10)
        #expect(processes.filter { $0.terminationStatus == 1 }.count == 2)
        let eleventh = try ctl(["admins", "add", "one more"])
        #expect(eleventh.code == 1)
        #expect(eleventh.stderr.contains("identity.administrator-limit") && eleventh.stderr.contains("(10)")
            && eleventh.stderr.contains("cmkctl admins remove CLIENT-ID"), "\(eleventh.stderr)")
        #expect(try (try ctl(["admins", "list", "--json"]).json() as? [Any])?.count == 10)
    }

    @Test func badNamesAreUsageErrors() throws {
        defer { cleanUp() }
        let long = try ctl(["admins", "add", String(repeating: "x", count: 65)])
        #expect(long.code == 2 && long.stderr.contains("use 1 to 64"))
        let bad = try ctl(["identities", "add", "host_1.example.net"])
        #expect(bad.code == 2 && bad.stderr.contains("is not a DNS host name"))
    }

    @Test func aPlatformIdentityIsAddedListedAndRemoved() throws {
        defer { cleanUp() }
        let added = try ctl(["identities", "add", "Host-1.example.net", "--json"])
        #expect(added.code == 0, "\(added.stderr)")
        #expect(added.stderr.contains("shown only this once"))
        let object = try added.object()
        let clientID = try #require(object["clientId"] as? String)
        #expect(object["name"] as? String == "host-1.example.net")
        let store = try IdentityStore(stateDirectory: state)
        #expect(try store.authenticate(clientID: clientID, secret: try #require(object["secret"] as? String)).principal?.role == .platform)
        #expect(try ctl(["identities", "add", "host-1.example.net"]).code == 2)
        let list = try ctl(["identities", "list"])
        #expect(list.text.contains("HOST") && list.text.contains("host-1.example.net") && list.text.contains("s ago"), "its authentication above is its last use")
        // An administrator's command does not remove a platform identity.
        #expect(try ctl(["admins", "remove", clientID]).code == 2)
        #expect(try ctl(["identities", "remove", clientID]).code == 0)
        #expect(try (try ctl(["identities", "list", "--json"]).json() as? [Any])?.isEmpty == true)
    }

    @Test func aStoreOthersCanReadIsRefused() throws {
        defer { cleanUp() }
        #expect(try ctl(["admins", "list"]).code == 0)
        chmod(state + "/" + IdentityStore.fileName, 0o644)
        let refused = try ctl(["admins", "list"])
        #expect(refused.code == 78)
        #expect(refused.stderr.contains("chmod 600"))
    }

    /// `cmkctl admins add` killed (SIGKILL) at each step of its transaction: the administrator
    /// exists with its secret after the commit, and not at all before it.
    @Test(arguments: [("identity.add-client.before-credential", 0), ("identity.add-client.before-commit", 0), ("identity.add-client.after-commit", 1)])
    func killedMidChangeTheStoreStaysWhole(_ point: String, _ expected: Int) throws {
        defer { cleanUp() }
        #expect(try ctl(["admins", "list"]).code == 0)
        var environment = ProcessInfo.processInfo.environment
        environment["CMK_CRASH_AT"] = point
        let killed = try Harness.run(try Harness.binary("cmkctl"), ["admins", "add", "Ada", "--vault-state", state], environment: environment)
        #expect(killed.code == SIGKILL, "cmkctl was not killed at \(point): exit \(killed.code), \(killed.stderr)")
        let admins = try IdentityStore(stateDirectory: state).administrators()
        #expect(admins.count == expected)
        #expect(admins.allSatisfy { $0.secretCreated != nil }, "an administrator without its secret")
        // The name is free again when nothing was committed.
        #expect(try ctl(["admins", "add", "Ada"]).code == (expected == 0 ? 0 : 2))
    }
}
