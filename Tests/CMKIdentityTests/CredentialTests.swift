import CMKIdentity
import Foundation
import Testing

@Suite struct CredentialTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aKeyFollowsGraphsPasswordCredential() throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        let created = try store.addServicePrincipalCredential(displayName: "hsm-1", at: start)
        let secret = try #require(created.secretText)
        #expect(secret.count == 43)
        #expect(created.hint == String(secret.prefix(3)))
        #expect(created.startDateTime == start)
        // Default end: one calendar year later (2027-01-15 → 2028-01-15).
        #expect(created.endDateTime.timeIntervalSince(start) == 365 * day)
        let listed = try store.servicePrincipalCredentials()
        #expect(listed.count == 1)
        #expect(listed[0].secretText == nil)
        #expect(listed[0].keyId == created.keyId && listed[0].hint == created.hint && listed[0].displayName == "hsm-1")
        let json = String(decoding: try JSONEncoder().encode(listed[0]), as: UTF8.self)
        #expect(!json.contains("secretText") && !json.contains(secret))
        #expect(try store.authenticate(clientID: store.tenant.servicePrincipalClientID, secret: secret, at: start)
            == .authenticated(Principal(role: .servicePrincipal, clientID: store.tenant.servicePrincipalClientID, credentialID: created.keyId)))
    }

    @Test func sixteenCharactersAreTheMost() throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        _ = try store.addServicePrincipalCredential(displayName: String(repeating: "k", count: 16), at: start)
        let error = identityError { _ = try store.addServicePrincipalCredential(displayName: String(repeating: "k", count: 17), at: start) }
        #expect(error?.code == .invalidName)
        #expect(error?.detail.contains("has 17 characters; use 1 to 16") == true)
        #expect(identityError { _ = try store.addServicePrincipalCredential(displayName: "", at: start) }?.code == .invalidName)
    }

    @Test(arguments: ["key/1", "key@1", "ключ", "a\u{0}b", "new\nline", "tab\tx", "key'1"])
    func badCharactersAreRefused(_ name: String) throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        let error = identityError { _ = try store.addServicePrincipalCredential(displayName: name, at: start) }
        #expect(error?.code == .invalidName)
        #expect(error?.detail.contains("use only ASCII letters, digits, space, '-', '_' and '.'") == true)
        #expect(error?.description.contains("\n") == false)
    }

    @Test func namesAreUniqueAmongLiveKeysOnly() throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        let first = try store.addServicePrincipalCredential(displayName: "prod.key_1", endDateTime: start + 10 * day, at: start)
        let duplicate = identityError { _ = try store.addServicePrincipalCredential(displayName: "PROD.KEY_1", at: start) }
        #expect(duplicate?.code == .duplicateName)
        #expect(duplicate?.detail.contains("revoke that key first") == true)
        // Revoked: the name is free again.
        try store.revokeServicePrincipalCredential(keyID: first.keyId, at: start + 1)
        let second = try store.addServicePrincipalCredential(displayName: "prod.key_1", endDateTime: start + 10 * day, at: start + 2)
        // Expired: free again too.
        #expect(identityError { _ = try store.addServicePrincipalCredential(displayName: "prod.key_1", at: start + 9 * day) }?.code == .duplicateName)
        _ = try store.addServicePrincipalCredential(displayName: "prod.key_1", at: start + 11 * day)
        #expect(try store.servicePrincipalCredentials().map(\.keyId).contains(second.keyId))
        #expect(!(try store.servicePrincipalCredentials().map(\.keyId).contains(first.keyId)))
    }

    @Test func theEndDateIsAfterTheStartAndAtMostTwoYearsLater() throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        let twoYears = start + (365 + 366) * day  // 2027-01-15 → 2029-01-15 crosses 29 Feb 2028
        _ = try store.addServicePrincipalCredential(displayName: "longest", endDateTime: twoYears, at: start)
        let tooLate = identityError { _ = try store.addServicePrincipalCredential(displayName: "too-long", endDateTime: twoYears + 1, at: start) }
        #expect(tooLate?.code == .invalidEndDate)
        #expect(tooLate?.detail.contains("more than two years") == true)
        #expect(identityError { _ = try store.addServicePrincipalCredential(displayName: "past", endDateTime: start, at: start) }?.code == .invalidEndDate)
        #expect(identityError { _ = try store.addServicePrincipalCredential(displayName: "past", endDateTime: start - day, at: start) }?.code == .invalidEndDate)
    }

    @Test func authenticationSaysPreciselyWhyItFailed() throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        let principal = store.tenant.servicePrincipalClientID
        let key = try store.addServicePrincipalCredential(displayName: "short", endDateTime: start + day, at: start)
        let secret = try #require(key.secretText)
        var wrong = Array(secret)
        wrong[42] = wrong[42] == "A" ? "B" : "A"
        #expect(try store.authenticate(clientID: principal, secret: String(wrong), at: start) == .refused(.wrongSecret))
        #expect(try store.authenticate(clientID: UUID().uuidString.lowercased(), secret: secret, at: start) == .refused(.unknownClient))
        #expect(try store.authenticate(clientID: "not a uuid", secret: secret, at: start) == .refused(.unknownClient))
        #expect(try store.authenticate(clientID: principal, secret: secret, at: start + day - 1).principal != nil)
        #expect(try store.authenticate(clientID: principal, secret: secret, at: start + day) == .refused(.credentialExpired))
        #expect(try store.authenticate(clientID: principal, secret: secret, at: start - 3600) == .refused(.credentialNotYetValid))
        try store.revokeServicePrincipalCredential(keyID: key.keyId, at: start + 10)
        #expect(try store.authenticate(clientID: principal, secret: secret, at: start + 20) == .refused(.credentialRevoked))
        #expect(identityError { try store.revokeServicePrincipalCredential(keyID: key.keyId) }?.code == .notFound)
    }

    @Test func lastUseIsWrittenAtMostOnceAMinute() throws {
        let directory = try StateDirectory()
        let store = try directory.store()
        let key = try store.addServicePrincipalCredential(displayName: "used", at: start)
        let principal = store.tenant.servicePrincipalClientID
        #expect(try store.servicePrincipalCredentialUsage() == [CredentialUsage(keyId: key.keyId, lastUsed: nil)])
        _ = try store.authenticate(clientID: principal, secret: key.secretText!, at: start + 100)
        #expect(try store.servicePrincipalCredentialUsage()[0].lastUsed == start + 100)
        _ = try store.authenticate(clientID: principal, secret: key.secretText!, at: start + 159)
        #expect(try store.servicePrincipalCredentialUsage()[0].lastUsed == start + 100)
        _ = try store.authenticate(clientID: principal, secret: key.secretText!, at: start + 160)
        #expect(try store.servicePrincipalCredentialUsage()[0].lastUsed == start + 160)
        // A failed authentication is no use.
        _ = try store.authenticate(clientID: principal, secret: "wrong", at: start + 500)
        #expect(try store.servicePrincipalCredentialUsage()[0].lastUsed == start + 160)
    }
}
