import Foundation
import GRDB

/// A service-principal key in Microsoft Graph's `passwordCredential` shape, so tooling written
/// for Graph reads it. `secretText` is set only in the answer to a create.
public struct PasswordCredential: Sendable, Hashable, Codable {
    public var keyId: String
    public var displayName: String
    public var startDateTime: Date
    public var endDateTime: Date
    /// The first three characters of the secret.
    public var hint: String
    /// The secret: only in ``IdentityStore/addServicePrincipalCredential(displayName:endDateTime:at:)``'s result.
    public var secretText: String?
}

/// When a credential last authenticated (SPEC §11 "who has access": keys with their last use).
public struct CredentialUsage: Sendable, Hashable, Codable {
    public var keyId: String
    public var lastUsed: Date?

    public init(keyId: String, lastUsed: Date?) {
        self.keyId = keyId
        self.lastUsed = lastUsed
    }
}

extension IdentityStore {
    /// A key's default lifetime when no end date is given: one year.
    public static let defaultCredentialLifetime = DateComponents(year: 1)
    /// A key's longest lifetime: two years after its start.
    public static let maximumCredentialLifetime = DateComponents(year: 2)

    /// A new key id (a lower-case UUID), for a caller that names the key before creating it.
    public static func newKeyID() -> String { IdentitySchema.newID() }

    /// Creates a key of the tenant's service principal: a fresh secret, `startDateTime` now,
    /// `endDateTime` as given (default one year later; after the start, at most two years later).
    /// The name must be unique, ignoring case, among the principal's *live* keys (not revoked,
    /// not expired): the name of a revoked or expired key may be used again.
    ///
    /// - Parameter keyID: the key's id (``newKeyID()``) when the caller chose it already (the vault
    ///   service names it in the security-log record it appends before the key exists); a new
    ///   UUID otherwise.
    public func addServicePrincipalCredential(displayName: String, endDateTime: Date? = nil, keyID: String? = nil, at now: Date = Date()) throws -> PasswordCredential {
        try Names.checkKeyName(displayName)
        let start = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let end = try Self.endDate(endDateTime, start: start)
        let secret = ClientSecret.generate()
        let credential = PasswordCredential(keyId: keyID ?? IdentitySchema.newID(), displayName: displayName, startDateTime: start,
                                            endDateTime: end, hint: secret.hint, secretText: secret.text)
        let principal = tenant.servicePrincipalClientID
        try write("create a service-principal key") { db in
            let taken = try Row.fetchOne(db, sql: """
                SELECT 1 FROM credentials WHERE client_id = ? AND name = ? COLLATE NOCASE AND revoked IS NULL AND end > ?
                """, arguments: [principal, displayName, now.timeIntervalSince1970])
            if taken != nil {
                throw IdentityError(.duplicateName, "displayName \(Names.quoted(displayName)) is already the name of a live key of the service principal; choose another name, or revoke that key first")
            }
            try insertCredential(db, keyID: credential.keyId, clientID: principal, name: displayName, secret: secret, start: start, end: end)
        }
        return credential
    }

    /// The service principal's keys that were not revoked (expired ones included, as Graph lists
    /// them), oldest first; never a secret or its hash.
    public func servicePrincipalCredentials() throws -> [PasswordCredential] {
        try read("list the service-principal keys") { db in
            try Row.fetchAll(db, sql: """
                SELECT key_id, name, start, end, hint FROM credentials WHERE client_id = ? AND revoked IS NULL ORDER BY start, key_id
                """, arguments: [tenant.servicePrincipalClientID]).map { row in
                PasswordCredential(keyId: row["key_id"], displayName: row["name"], startDateTime: Date(timeIntervalSince1970: row["start"]),
                                   endDateTime: Date(timeIntervalSince1970: row["end"]), hint: row["hint"], secretText: nil)
            }
        }
    }

    /// When each of the service principal's unrevoked keys last authenticated.
    public func servicePrincipalCredentialUsage() throws -> [CredentialUsage] {
        try read("read the service-principal keys' last use") { db in
            try Row.fetchAll(db, sql: "SELECT key_id, last_used FROM credentials WHERE client_id = ? AND revoked IS NULL ORDER BY start, key_id",
                             arguments: [tenant.servicePrincipalClientID]).map {
                CredentialUsage(keyId: $0["key_id"], lastUsed: IdentitySchema.date($0["last_used"]))
            }
        }
    }

    /// Revokes a key of the service principal: authentication with it fails and tokens issued
    /// from it are refused from the next request on. A revoked key is no longer listed.
    public func revokeServicePrincipalCredential(keyID: String, at now: Date = Date()) throws {
        try write("revoke a service-principal key") { db in
            try db.execute(sql: "UPDATE credentials SET revoked = ? WHERE key_id = ? AND client_id = ? AND revoked IS NULL",
                           arguments: [now.timeIntervalSince1970, keyID, tenant.servicePrincipalClientID])
            guard db.changesCount == 1 else {
                throw IdentityError(.notFound, "the service principal has no unrevoked key with keyId \(Names.quoted(keyID)); list the keys to see their ids")
            }
        }
    }

    /// The end date: the default one year after `start`, or `requested` if it is after `start`
    /// and at most two years after it.
    /// The end date a key starting at `start` gets for `requested` (nil: one year), or
    /// `identity.invalid-end-date` naming the range: after the start, at most two years later.
    public static func endDate(_ requested: Date?, start: Date) throws -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let requested else { return calendar.date(byAdding: defaultCredentialLifetime, to: start)! }
        let latest = calendar.date(byAdding: maximumCredentialLifetime, to: start)!
        guard requested > start else {
            throw IdentityError(.invalidEndDate, "endDateTime \(requested.ISO8601Format()) is not after startDateTime \(start.ISO8601Format()); give a later end date")
        }
        guard requested <= latest else {
            throw IdentityError(.invalidEndDate, "endDateTime \(requested.ISO8601Format()) is more than two years after startDateTime \(start.ISO8601Format()); the latest allowed is \(latest.ISO8601Format())")
        }
        return requested
    }
}
