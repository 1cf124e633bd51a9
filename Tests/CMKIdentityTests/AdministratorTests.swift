import CMKIdentity
import Foundation
import GRDB
import Glibc
import Testing

@Suite struct AdministratorTests {
    @Test func theStoreIsCreatedPrivateWithOneTenantThatLasts() throws {
        let directory = try StateDirectory()
        let first = try directory.store()
        var info = stat()
        #expect(stat(first.path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(first.tenant.tenantID == first.tenant.tenantID.lowercased())
        #expect(UUID(uuidString: first.tenant.tenantID) != nil)
        #expect(UUID(uuidString: first.tenant.servicePrincipalClientID) != nil)
        let again = try directory.store()
        #expect(again.tenant == first.tenant)
    }

    @Test func aStoreOthersCanReadIsRefused() throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        chmod(store.path, 0o644)
        let error = identityError { _ = try directory.store() }
        #expect(error?.code == .permissions)
        #expect(error?.detail.contains("chmod 600") == true)
    }

    @Test func aStoreFromANewerBuildIsRefusedUntouched() throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        let queue = try DatabaseQueue(path: store.path)
        try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA user_version = 99") }
        try queue.close()
        let error = identityError { _ = try directory.store() }
        #expect(error?.code == .misconfigured)
        #expect(error?.detail.contains("schema version 99, newer than this build's (1)") == true)
    }

    @Test func theEleventhAdministratorIsRefused() throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        for index in 1...10 { _ = try store.addAdministrator(name: "admin \(index)") }
        let error = identityError { _ = try store.addAdministrator(name: "admin 11") }
        #expect(error?.code == .administratorLimit)
        #expect(error?.detail.contains("(10)") == true)
        #expect(error?.detail.contains("cmkctl admins remove") == true)
        #expect(try store.administrators().count == 10)
        // Removing one makes room again.
        try store.removeAdministrator(clientID: try store.administrators()[0].clientID)
        _ = try store.addAdministrator(name: "admin 11")
        #expect(try store.administrators().count == 10)
    }

    @Test(arguments: ["", String(repeating: "a", count: 65), "tab\there", "émile", "semi;colon", " leading"])
    func badAdministratorNamesAreRefused(_ name: String) throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        let error = identityError { _ = try store.addAdministrator(name: name) }
        #expect(error?.code == .invalidName)
        #expect(error?.detail.contains("administrator name") == true)
    }

    @Test func administratorsAuthenticateAndReplaceTheirSecret() throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        let admin = try store.addAdministrator(name: "Ada O'Neil")
        #expect(admin.secret.text.count == 43)
        #expect("\(admin.secret)" == "<redacted>")
        let first = try store.authenticate(clientID: admin.clientID, secret: admin.secret.text)
        #expect(first == .authenticated(Principal(role: .administrator, clientID: admin.clientID, credentialID: admin.credentialID)))
        let replaced = try store.replaceAdministratorSecret(clientID: admin.clientID)
        #expect(replaced.secret.text != admin.secret.text)
        #expect(try store.authenticate(clientID: admin.clientID, secret: admin.secret.text) == .refused(.credentialRevoked))
        #expect(try store.authenticate(clientID: admin.clientID, secret: replaced.secret.text).principal?.credentialID == replaced.credentialID)
        try store.removeAdministrator(clientID: admin.clientID)
        #expect(try store.authenticate(clientID: admin.clientID, secret: replaced.secret.text) == .refused(.unknownClient))
        #expect(identityError { try store.removeAdministrator(clientID: admin.clientID) }?.code == .notFound)
    }

    @Test func duplicateAdministratorNamesAreRefused() throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        _ = try store.addAdministrator(name: "Ada")
        #expect(identityError { _ = try store.addAdministrator(name: "ada") }?.code == .duplicateName)
    }

    @Test func platformIdentitiesNeedAHostName() throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        let host = try store.addPlatformIdentity(host: "Host-1.Example.net")
        #expect(host.name == "host-1.example.net")
        #expect(try store.platformIdentities().map(\.clientID) == [host.clientID])
        #expect(try store.authenticate(clientID: host.clientID, secret: host.secret.text).principal?.role == .platform)
        for bad in ["", "-host", "host-", "a..b", "host_1", "h\u{e9}te", String(repeating: "a", count: 64) + ".net", "a b"] {
            #expect(identityError { _ = try store.addPlatformIdentity(host: bad) }?.code == .invalidHost, "\(bad)")
        }
        #expect(identityError { _ = try store.addPlatformIdentity(host: "host-1.example.net") }?.code == .duplicateName)
        // A platform identity is not an administrator: removing it through the wrong list fails.
        #expect(identityError { try store.removeAdministrator(clientID: host.clientID) }?.code == .notFound)
        try store.removePlatformIdentity(clientID: host.clientID)
        #expect(try store.platformIdentities().isEmpty)
    }
}
